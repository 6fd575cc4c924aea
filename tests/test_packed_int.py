"""GPTQ and AWQ checkpoints read as dense weights (models/packed_int.py), held to gptqmodel.

The folders under tests/data/packed_checkpoints were written by gptqmodel 7.6.0 itself
(make_fixtures.py there): a tiny Llama quantized six ways, each saved with gptqmodel's own save,
with `reference.safetensors` holding the weights gptqmodel's own kernels dequantize every
quantized Linear to (float16) and the logits of its quantized forward. A few all-positive rows
give the asymmetric grids zero point 0, where GPTQ v1's minus-one storage borrows across fields.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from comptrust_plugin.errors import TrustError
from comptrust_plugin.models.loading import load_model
from comptrust_plugin.models.packed_int import dense_state, packed_format, unpack, v1_zero_points
from comptrust_plugin.models.registry import resolve_model

FIXTURES = Path(__file__).parent / "data" / "packed_checkpoints"
FOLDERS = sorted(p.name for p in FIXTURES.iterdir() if (p / "reference.safetensors").is_file())


def _layout(folder: Path):
    config = json.loads((folder / "config.json").read_text())
    return packed_format("--compress=hub:x", config["quantization_config"])


def test_every_folder_is_there() -> None:
    assert FOLDERS == ["awq-4-g32-gemm", "gptq-2-g-1-sym", "gptq-3-g32-sym-act", "gptq-4-g32-asym-act",
                       "gptq-4-g32-sym", "gptq-8-g64-asym"]


@pytest.mark.parametrize("name", FOLDERS)
def test_weights_equal_what_gptqmodel_dequantizes(name: str) -> None:
    folder = FIXTURES / name
    reference = load_file(str(folder / "reference.safetensors"))
    weights = {k: v for k, v in reference.items() if k.endswith(".weight")}
    assert len(weights) == 14  # 7 Linears in each of 2 blocks
    state = dense_state(folder, _layout(folder), torch.float32)
    for key, expected in weights.items():
        # gptqmodel multiplies in float16; ours is the exact float32 product, rounded once here
        assert torch.equal(state[key].to(torch.float16), expected), key


def test_the_zero_point_borrows_are_read_back() -> None:
    """Where an asymmetric grid has zero point 0, v1 stores -1: gptqmodel's packed subtraction
    borrows from the next field, and only the packed addition undoes it."""
    folder = FIXTURES / "gptq-4-g32-asym-act"
    qzeros = load_file(str(folder / "model.safetensors"))["model.layers.0.mlp.up_proj.qzeros"]
    fieldwise = (unpack(qzeros, 4, dim=1) + 1) & 0xF
    packed = v1_zero_points(qzeros, 4)
    assert (fieldwise != packed).any()  # the rows made all-positive
    assert (packed[:, :4] == 0).all()


@pytest.mark.parametrize("name", FOLDERS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_loading_gives_gptqmodels_logits(name: str, dtype: torch.dtype, tmp_path: Path) -> None:
    folder = FIXTURES / name
    reference = load_file(str(folder / "reference.safetensors"))
    loaded = load_model(resolve_model(str(folder)), tmp_path, torch.device("cpu"), dtype)
    assert not hasattr(loaded.model.config, "quantization_config")
    with torch.no_grad():
        logits = loaded.model(reference["input_ids"]).logits.float()
    # gptqmodel ran its float16 kernels; the weights are equal, the matmuls' rounding is not
    assert (logits - reference["logits"]).abs().max().item() <= 2e-3


def _pack_stream(codes: list[int], bits: int) -> list[int]:
    """32 codes per `bits` int32 words, as one little-endian bit stream (the layout's definition)."""
    words = []
    for start in range(0, len(codes), 32):
        stream = sum(code << (bits * i) for i, code in enumerate(codes[start:start + 32]))
        for w in range(bits):
            value = (stream >> (32 * w)) & 0xFFFFFFFF
            words.append(value - (1 << 32) if value >= 1 << 31 else value)
    return words


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_unpack_reads_the_bit_stream_along_either_dimension(bits: int) -> None:
    rng = random.Random(bits)
    codes = torch.tensor([[rng.randrange(1 << bits) for _ in range(5)] for _ in range(96)])
    packed = torch.tensor([_pack_stream(codes[:, c].tolist(), bits) for c in range(5)], dtype=torch.int32).t()
    assert torch.equal(unpack(packed, bits, dim=0), codes)
    assert torch.equal(unpack(packed.t().contiguous(), bits, dim=1), codes.t())


def test_a_damaged_checkpoint_is_one_line(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    folder = tmp_path / "ckpt"
    source = FIXTURES / "gptq-4-g32-sym"
    folder.mkdir()
    for path in source.iterdir():
        if path.name != "model.safetensors":
            (folder / path.name).write_bytes(path.read_bytes())
    tensors = load_file(str(source / "model.safetensors"))
    del tensors["model.layers.1.self_attn.k_proj.scales"]
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(TrustError) as error:
        load_model(resolve_model(str(folder)), tmp_path, torch.device("cpu"), torch.float32)
    assert str(error.value) == (f"--model={folder}: cannot read its GPTQ weights: "
                                "model.layers.1.self_attn.k_proj lacks scales")
