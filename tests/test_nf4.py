"""bitsandbytes' 4-bit NF4 / FP4: our simulated round trip is bit for bit bitsandbytes' own CPU
`quantize_4bit` + `dequantize_4bit` (double quant included), signed zeros included."""

from __future__ import annotations

import bitsandbytes.functional as F
import pytest
import torch
from bitsandbytes.cextension import ErrorHandlerMockBNBNativeLibrary, lib

from comptrust_plugin.compress.nf4 import (
    BLOCKS,
    DEFAULT_BLOCK,
    KINDS,
    dynamic_map,
    quantize_dequantize,
    quantize_dequantize_8bit,
)

TESTED_BLOCKS = (DEFAULT_BLOCK, 128, 32)
CONFIGS = [(kind, block, dq) for kind in KINDS for block in TESTED_BLOCKS for dq in (False, True)]
CONFIG_IDS = [f"{kind}-{block}-{'dq' if dq else 'plain'}" for kind, block, dq in CONFIGS]


# bitsandbytes runs its CPU ops through its native library where that library loads, and through
# its portable PyTorch code where it does not, and the two disagree. On a 2-core AVX-512 BF16 EPYC
# (2026-12-07), where it loads, the native decoder returned +0.0 for fp4's -0.0 code and other
# values for 3-D weights, and double-quantized blocks came back with other values; on the AVX2
# machine these tests were written on they held bit for bit. comptrust's round trip is the
# portable path's; where the native library is loaded these comparisons have no reference to
# hold it to, and the skip says so.
portable_bitsandbytes = pytest.mark.skipif(
    not isinstance(lib, ErrorHandlerMockBNBNativeLibrary),
    reason="bitsandbytes' native CPU library is loaded here; comptrust matches its portable CPU path",
)


def reference(weight: torch.Tensor, kind: str, block: int, double_quant: bool) -> torch.Tensor:
    packed, state = F.quantize_4bit(weight, blocksize=block, quant_type=kind, compress_statistics=double_quant)
    return F.dequantize_4bit(packed, state).reshape(weight.shape)  # its CPU decoder returns a 1-D weight as 1 x n


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal shape, dtype and bits (so -0.0 differs from 0.0, which torch.equal would not see)."""
    return (a.shape == b.shape and a.dtype == b.dtype
            and torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8)))


def assert_matches(weight: torch.Tensor, kind: str, block: int, double_quant: bool, what: str = "") -> None:
    ours = quantize_dequantize(weight, kind, block, double_quant)
    theirs = reference(weight, kind, block, double_quant)
    assert ours.dtype == torch.float32 and ours.shape == weight.shape
    assert same_bits(ours.to(theirs.dtype), theirs), (what, kind, block, double_quant)


def _midpoint_probe(kind: str) -> torch.Tensor:
    """Blocks of absmax exactly 1 (so the scaled value is the value) holding every code value, every
    midpoint between neighbouring sorted codes and the floats either side of each midpoint."""
    code = F.get_4bit_type(kind, device="cpu").sort().values
    mids = (code[:-1] + code[1:]) / 2
    probe = torch.cat([code, mids, torch.nextafter(mids, torch.tensor(2.0)), torch.nextafter(mids, torch.tensor(-2.0)),
                       torch.tensor([1e-4, -1e-4, 1e-30, -1e-30, 0.0, -0.0])])
    rows = -(-probe.numel() // 63)
    probe = torch.cat([probe, torch.zeros(rows * 63 - probe.numel())]).view(rows, 63)
    return torch.cat([torch.ones(rows, 1), probe], dim=1)  # 64 wide: the block holds the absmax 1


def _scaled_midpoint_probe() -> torch.Tensor:
    """Each code midpoint times an absmax whose reciprocal is inexact, and the floats either side:
    where dividing by the absmax (short last block) and multiplying by its reciprocal (full blocks)
    round to different codes. One 64-block per (table, absmax), then the same again as a short
    last block."""
    blocks = []
    for kind in KINDS:
        code = F.get_4bit_type(kind, device="cpu").sort().values
        mids = (code[:-1] + code[1:]) / 2
        for absmax in (3.0, 7.0, 0.3, 1.7):
            near = mids * absmax
            values = torch.cat([torch.tensor([absmax]), near, torch.nextafter(near, near + 1),
                                torch.nextafter(near, near - 1)])
            blocks.append(torch.cat([values, torch.zeros(64 - values.numel())]))
    return torch.cat(blocks + [values])


def edge_cases() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    ties = torch.randn(4, 64) * 0.1
    ties[:, 5], ties[:, 40] = 0.5, -0.5  # the largest magnitude twice, both signs
    ties[2, :] = torch.tensor([0.25, -0.25] * 32)
    signed_zeros = torch.randn(8, 64) * 1e-3
    signed_zeros[::2, ::3] = -0.0
    signed_zeros[1::2, ::4] = 0.0
    signed_zeros[:, 1] = 1.0
    mixed_zero = torch.randn(16, 64)
    mixed_zero[3] = 0.0  # one all-zero block among others
    tail_zero = torch.randn(1000)
    tail_zero[960:] = 0.0  # 1000 = 15 x 64 + 40: the short last block is all zero
    equal_absmax = torch.rand(300, 64) * 0.5
    equal_absmax[:, 7] = 1.0  # every block's absmax 1: double quant stores all-zero differences
    return {
        "all zero": torch.zeros(4, 256),
        "one all-zero block": mixed_zero,
        "ties of the largest magnitude": ties,
        "constant blocks": torch.cat([torch.full((2, 64), 0.25), torch.full((2, 64), -3.0),
                                      torch.full((1, 64), 1e-20)]),
        "signed zeros and tiny values": signed_zeros,
        "on the nf4 midpoints": _midpoint_probe("nf4"),
        "on the fp4 midpoints": _midpoint_probe("fp4"),
        "on midpoints times an absmax, full and short blocks": _scaled_midpoint_probe(),
        "size off the block (C decoder)": torch.randn(10, 50),
        "odd last dimension (torch decoder)": torch.randn(7, 9),
        "short last block all zero": tail_zero,
        "1-D": torch.randn(4096 + 100),
        "3-D": torch.randn(3, 40, 16),
        "subnormal and huge absmax": torch.cat([torch.full((1, 64), 1e-39), torch.randn(1, 64) * 1e30,
                                                torch.randn(1, 64) * 1e-35]),
        "equal absmaxes (double quant scale 0)": equal_absmax,
        "more absmaxes than one 256 block": torch.randn(700, 64) * torch.rand(700, 1),
    }


@portable_bitsandbytes
@pytest.mark.parametrize(("kind", "block", "double_quant"), CONFIGS, ids=CONFIG_IDS)
def test_edge_cases_match_bitsandbytes(kind: str, block: int, double_quant: bool) -> None:
    for what, weight in edge_cases().items():
        assert_matches(weight, kind, block, double_quant, what)


@portable_bitsandbytes
def test_every_accepted_block_size_matches_bitsandbytes() -> None:
    torch.manual_seed(1)
    weight = torch.randn(96, 128) * torch.rand(96, 1)  # 12288 values: 3 blocks of 4096
    for block in BLOCKS:
        for kind in KINDS:
            for double_quant in (False, True):
                assert_matches(weight, kind, block, double_quant, "random")


@portable_bitsandbytes
def test_fp4_small_positive_values_come_back_as_negative_zero() -> None:
    """The two FP4 zeros tie: bitsandbytes sends small positive values to code 0b1000, -0.0."""
    weight = torch.tensor([1.0, 1e-4, -1e-4, 0.0, -0.0, 0.5] + [0.0] * 58)
    out = quantize_dequantize(weight, "fp4")
    assert out[1].item() == 0.0 and torch.signbit(out[1]) and not torch.signbit(out[2])
    assert not torch.signbit(out[3]) and not torch.signbit(out[4])
    assert same_bits(out, reference(weight, "fp4", 64, False))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("kind", "block", "double_quant"), CONFIGS, ids=CONFIG_IDS)
def test_half_precision_weights_match_bitsandbytes(dtype: torch.dtype, kind: str, block: int,
                                                   double_quant: bool) -> None:
    """bitsandbytes decodes a bf16 (fp16) weight straight to bf16 (fp16): that is our float32
    result rounded to nearest even, which is also its own float32 result cast."""
    torch.manual_seed(2)
    weight = (torch.randn(64, 200) * 0.03).to(dtype)
    theirs = reference(weight, kind, block, double_quant)
    assert theirs.dtype == dtype
    assert same_bits(quantize_dequantize(weight, kind, block, double_quant).to(dtype), theirs)
    assert same_bits(reference(weight.float(), kind, block, double_quant).to(dtype), theirs)


def test_dynamic_map_is_bitsandbytes() -> None:
    assert same_bits(dynamic_map(), F.create_dynamic_map())


def test_double_quant_8bit_path_on_its_rounding_boundaries() -> None:
    """The absmaxes' 8-bit quantizer (bitsandbytes' C kernel) rounds through a 65536-point grid:
    every value at which the grid index changes, and the floats either side, in blocks of absmax 1."""
    k = torch.arange(1, 65536, dtype=torch.float64)
    edges = ((k - 0.5) * 2 / 65535 - 1).float()
    grid = (2.0 * torch.arange(65536, dtype=torch.float32)) / 65535.0 - 1.0
    values = [edges, grid]
    for _ in range(2):
        values += [torch.nextafter(values[-2], torch.tensor(2.0)), torch.nextafter(values[-1], torch.tensor(-2.0))]
    probe = torch.cat(values).clamp(-1, 1)
    rows = -(-probe.numel() // 255)
    probe = torch.cat([probe, torch.zeros(rows * 255 - probe.numel())]).view(rows, 255)
    x = torch.cat([torch.ones(rows, 1), probe], dim=1).reshape(-1)
    packed, state = F.quantize_blockwise(x, blocksize=256)
    assert same_bits(quantize_dequantize_8bit(x), F.dequantize_blockwise(packed, state))
    scaled = torch.cat([torch.randn(1000) * 3e-4, torch.zeros(256), torch.randn(77) * 1e-6])  # 6 blocks, 1 short
    packed, state = F.quantize_blockwise(scaled, blocksize=256)
    assert same_bits(quantize_dequantize_8bit(scaled), F.dequantize_blockwise(packed, state))


@pytest.mark.parametrize("kind", ["nf8", "NF4", "int4", ""])
def test_an_unknown_kind_is_one_line(kind: str) -> None:
    with pytest.raises(ValueError, match=r"^unknown bitsandbytes 4-bit type .*; choose from nf4, fp4$"):
        quantize_dequantize(torch.zeros(64), kind)


@pytest.mark.parametrize("block", [16, 100, 8192, 0, -64])
def test_a_block_size_bitsandbytes_refuses_is_one_line(block: int) -> None:
    with pytest.raises(ValueError, match=r"^bitsandbytes' 4-bit block size must be one of 32, 64, 128, 256, 512, "
                                         rf"1024, 2048, 4096, not {block}$"):
        quantize_dequantize(torch.zeros(64), "nf4", block)
    with pytest.raises(ValueError):  # bitsandbytes refuses it too
        F.quantize_4bit(torch.zeros(8192), blocksize=block, quant_type="nf4")


@pytest.fixture(scope="module")
def smollm2_linears(model_cache_dir) -> dict[str, torch.Tensor]:
    """Every decoder-block Linear weight of the embedded SmolLM2-135M (float32), by `<block>.<name>`."""
    from comptrust_plugin.compress.layers import model_linears
    from comptrust_plugin.models.loading import load_model
    from comptrust_plugin.models.registry import resolve_model

    loaded = load_model(resolve_model("smollm2-135m"), model_cache_dir, torch.device("cpu"), torch.float32)
    return {name: linear.weight.detach() for name, linear in model_linears(loaded.model).items()}


@portable_bitsandbytes
@pytest.mark.embedded
@pytest.mark.parametrize(("kind", "block", "double_quant"), CONFIGS, ids=CONFIG_IDS)
def test_embedded_model_linears_match_bitsandbytes(smollm2_linears, kind: str, block: int,
                                                   double_quant: bool) -> None:
    """At the default block size every decoder-block Linear (30 x 7); at the others, every Linear of
    the first and last blocks and one Linear (in turn q, k, v, o, gate, up, down) of every other
    block: bit for bit bitsandbytes'. The first block's Linears also as bf16 weights."""
    names = list(smollm2_linears)
    per_block = sum(name.startswith("0.") for name in names)
    blocks = len(names) // per_block
    assert blocks == 30 and per_block == 7
    if block == DEFAULT_BLOCK:
        chosen = names
    else:
        one_each = [names[b * per_block + b % per_block] for b in range(1, blocks - 1)]
        chosen = names[:per_block] + names[-per_block:] + one_each
    for name in chosen:
        assert_matches(smollm2_linears[name], kind, block, double_quant, name)
    for name in names[:per_block]:
        assert_matches(smollm2_linears[name].to(torch.bfloat16), kind, block, double_quant, f"{name} in bf16")
