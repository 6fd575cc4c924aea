"""GPTQ and AWQ checkpoints read as dense weights: a user's artifact gated on any device, no kernel package.

A quantized Linear (in_features K, out_features N, b bits, groups of g input rows) is stored as:

- GPTQ: `qweight` int32 [K*b/32, N], the codes packed along the input dimension; `qzeros` int32
  [groups, N*b/32], the zero points packed along the output dimension; `scales` [groups, N];
  `g_idx` int32 [K], the group of each input row (act-order checkpoints permute it). Weight
  W[n, k] = scales[g_idx[k], n] * (code[k, n] - zero[g_idx[k], n]).
- AWQ (`version: gemm`, 4 bits): `qweight` int32 [K, N/8] and `qzeros` int32 [groups, N/8], both
  packed along the output dimension with field i of word c holding column 8c + (0, 2, 4, 6, 1, 3,
  5, 7)[i]; `scales` [groups, N]; W[n, k] = scales[k // g, n] * (code[k, n] - zero[k // g, n]).

Packing: 32 codes of b bits fill b int32 words as one little-endian bit stream (code i at bits
b*i .. b*i + b - 1), so 2-, 4- and 8-bit codes sit inside one word and 3-bit codes 10 and 21
straddle two.

GPTQ's `gptq` checkpoint format (v1, what most published checkpoints are) stores each zero point
minus one. For 2, 4 and 8 bits it is read back by adding one to every field of the packed word at
once (int32 arithmetic, carries included), the exact inverse of how gptqmodel writes it (a packed
subtraction, borrows included); this is also what gptqmodel does when it loads one. For 3 bits each
field is decoded, incremented and wrapped, as gptqmodel does. `gptq_v2` stores zero points as they
are.

The layouts and conventions were read in gptqmodel 7.6's packers, kernels and loaders; this module
is our own code, and tests/test_packed_int.py holds it to checkpoints gptqmodel wrote and to the
weights gptqmodel's own kernels dequantize them to. Products are computed in float32 (exact for
fp16 or bf16 scales times codes of at most 8 bits) and cast once to the load dtype.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import TrustError

PACKED_METHODS = ("gptq", "awq")
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)  # column offset held by field i of an AWQ word
_GPTQ_BITS = (2, 3, 4, 8)
_PARTS = ("qweight", "qzeros", "scales", "g_idx")


@dataclass(frozen=True)
class PackedFormat:
    method: str  # "gptq" or "awq"
    bits: int
    group_size: int  # AWQ only (GPTQ reads g_idx)
    zero_minus_one: bool  # GPTQ v1: zero points stored minus one


def packed_format(flag: str, quantization: Mapping[str, Any]) -> PackedFormat:
    """The layout a GPTQ or AWQ `quantization_config` describes; a one-line error for one we cannot read."""
    method = str(quantization.get("quant_method", "")).lower()
    bits = quantization.get("bits", quantization.get("w_bit", 4))
    if method == "gptq":
        layout = str(quantization.get("checkpoint_format") or quantization.get("format") or "gptq").lower()
        if layout not in ("gptq", "gptq_v2"):
            raise TrustError(f"{flag}: a GPTQ checkpoint in the '{layout}' layout; comptrust reads the 'gptq' "
                             "and 'gptq_v2' layouts (convert it with gptqmodel, or gate the model it came from)")
        if bits not in _GPTQ_BITS:
            raise TrustError(f"{flag}: a {bits}-bit GPTQ checkpoint; comptrust reads 2, 3, 4 and 8 bits")
        if str(quantization.get("pack_dtype", "int32")).replace("torch.", "") != "int32":
            raise TrustError(f"{flag}: a GPTQ checkpoint packed in {quantization['pack_dtype']} words; "
                             "comptrust reads int32 words (gptqmodel's default)")
        return PackedFormat("gptq", int(bits), 0, layout == "gptq")
    if method == "awq":
        version = str(quantization.get("version") or quantization.get("format") or "gemm").lower()
        group = quantization.get("group_size", quantization.get("q_group_size", 128))
        if version != "gemm":
            raise TrustError(f"{flag}: an AWQ checkpoint in the '{version}' layout; comptrust reads the 'gemm' "
                             "layout (the default of AutoAWQ and gptqmodel)")
        if bits != 4 or not isinstance(group, int) or group <= 0:
            raise TrustError(f"{flag}: an AWQ checkpoint with bits={bits}, group_size={group}; comptrust reads "
                             "4-bit AWQ with a positive group size")
        if quantization.get("zero_point") is False:
            raise TrustError(f"{flag}: an AWQ checkpoint without zero points; comptrust reads zero-point AWQ")
        return PackedFormat("awq", 4, group, False)
    raise TrustError(f"{flag}: quant_method '{method}' is not a GPTQ or AWQ checkpoint")


def unpack(words: torch.Tensor, bits: int, dim: int) -> torch.Tensor:
    """int32 words -> int64 codes, each run of `bits` words along `dim` giving 32 codes."""
    moved = words.movedim(dim, 0).to(torch.int64) & 0xFFFFFFFF
    if moved.shape[0] % bits:
        raise ValueError(f"{moved.shape[0]} packed words is not a multiple of {bits} ({bits}-bit codes)")
    runs = moved.reshape(moved.shape[0] // bits, bits, *moved.shape[1:])
    mask = (1 << bits) - 1
    codes = []
    for i in range(32):
        word, shift = divmod(bits * i, 32)
        code = runs[:, word] >> shift
        if shift + bits > 32:  # straddles into the next word
            code = code | (runs[:, word + 1] << (32 - shift))
        codes.append(code & mask)
    stacked = torch.stack(codes, dim=1)  # [runs, 32, ...]
    return stacked.reshape(-1, *moved.shape[1:]).movedim(0, dim)


def v1_zero_points(qzeros: torch.Tensor, bits: int) -> torch.Tensor:
    """Zero-point codes of a `gptq` (v1) checkpoint, which stores them minus one."""
    if bits == 3:
        return (unpack(qzeros, 3, dim=1) + 1) & 0x7
    fields = 32 // bits
    one_each = sum(1 << (bits * j) for j in range(fields))
    added = (qzeros.to(torch.int64) + one_each) & 0xFFFFFFFF  # packed add: carries cross fields
    return unpack(added, bits, dim=1)


def gptq_weight(parts: Mapping[str, torch.Tensor], layout: PackedFormat) -> torch.Tensor:
    """One GPTQ Linear's float32 weight, [out_features, in_features]."""
    codes = unpack(parts["qweight"], layout.bits, dim=0)
    if layout.zero_minus_one:
        zeros = v1_zero_points(parts["qzeros"], layout.bits)
    else:
        zeros = unpack(parts["qzeros"], layout.bits, dim=1)
    scales = parts["scales"].to(torch.float32)
    groups = parts["g_idx"].to(torch.int64)
    if codes.shape[0] < groups.shape[0] or zeros.shape[1] < scales.shape[1]:
        raise ValueError(f"qweight/qzeros shapes {tuple(codes.shape)}/{tuple(zeros.shape)} do not cover "
                         f"g_idx {tuple(groups.shape)} and scales {tuple(scales.shape)}")
    codes = codes[: groups.shape[0]]
    zeros = zeros[:, : scales.shape[1]]
    weight = scales[groups] * (codes - zeros[groups]).to(torch.float32)
    return weight.t().contiguous()


def awq_weight(parts: Mapping[str, torch.Tensor], layout: PackedFormat) -> torch.Tensor:
    """One AWQ (GEMM) Linear's float32 weight, [out_features, in_features]."""
    order = torch.tensor(AWQ_ORDER)
    inverse = torch.argsort(order)  # field holding column offset c

    def columns(words: torch.Tensor) -> torch.Tensor:
        fields = unpack(words, 4, dim=1).reshape(words.shape[0], -1, 8)  # [rows, words, field]
        return fields[:, :, inverse].reshape(words.shape[0], -1)

    codes, zeros = columns(parts["qweight"]), columns(parts["qzeros"])
    scales = parts["scales"].to(torch.float32)
    group = torch.arange(codes.shape[0]) // layout.group_size
    if int(group[-1]) >= scales.shape[0] or zeros.shape != scales.shape:
        raise ValueError(f"qweight {tuple(codes.shape)} with group size {layout.group_size} does not match "
                         f"scales {tuple(scales.shape)} / qzeros {tuple(zeros.shape)}")
    weight = scales[group] * (codes - zeros[group]).to(torch.float32)
    return weight.t().contiguous()


def dense_state(folder: Path, layout: PackedFormat, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Every tensor of a packed checkpoint folder, quantized Linears dequantized, in `dtype`."""
    from safetensors import safe_open

    state: dict[str, torch.Tensor] = {}
    packed: dict[str, dict[str, torch.Tensor]] = {}
    for path in _shards(folder):
        with safe_open(str(path), framework="pt") as reader:
            for key in reader.keys():  # noqa: SIM118 (a reader, not a dict)
                prefix, _, part = key.rpartition(".")
                if part in _PARTS:
                    packed.setdefault(prefix, {})[part] = reader.get_tensor(key)
                else:
                    tensor = reader.get_tensor(key)
                    state[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    needed = ("qweight", "qzeros", "scales") + (("g_idx",) if layout.method == "gptq" else ())
    for prefix, parts in packed.items():
        missing = [p for p in needed if p not in parts]
        if missing:
            raise ValueError(f"{prefix} lacks {', '.join(missing)}")
        weight = gptq_weight(parts, layout) if layout.method == "gptq" else awq_weight(parts, layout)
        state[f"{prefix}.weight"] = weight.to(dtype)
    return state


def _shards(folder: Path) -> Iterator[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        yield from (folder / name for name in names)
        return
    shards = sorted(folder.glob("*.safetensors"))
    if not shards:
        raise ValueError(f"no safetensors weights in {folder}")
    yield from shards
