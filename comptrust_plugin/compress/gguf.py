"""llama.cpp's legacy block quants (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), quantized and dequantized as llama.cpp does.

Each row of a weight is cut into blocks of 32 consecutive input columns. Per block:
- Q4_0 / Q5_0 (symmetric): d = x_m / -8 (-16), where x_m is the value of largest magnitude
  (its sign kept, the first one on ties); q = trunc(x / d + 8.5 (16.5)) clamped to 0..15 (31);
  value = fp16(d) x (q - 8 (16)).
- Q4_1 / Q5_1 (with a minimum): d = (max - min) / 15 (31); q = trunc((x - min) / d + 0.5)
  clamped to 0..15 (31); value = fp16(d) x q + fp16(min).
- Q8_0: d = max|x| / 127; q = x / d rounded half away from zero; value = q x fp16(d).
Divisions are by the float32 reciprocal 1/d (0 where d is 0), every step in float32, the
scale (and minimum) stored as float16: the dequantized weight is bit for bit what the `gguf`
package's reference quantizer (`gguf.quants`, itself bit-exact with ggml-quants.c) round-trips
(tests compare the two on the embedded model's weights).

Which tensors: the decoder blocks' Linear weights get the type, as llama.cpp's `quantize` gives
them for these types; 1-D tensors stay float (as there). Two departures, both because nothing
here can reproduce them exactly: the token embedding and the output head stay as in the dense
model (llama.cpp quantizes the embedding with the type and the output head to Q6_K by default,
and the `gguf` package has no Q6_K quantizer to check one against); and the K-quants (Q4_K_M
and others) are not offered: the package dequantizes them but has no quantizer for them.
"""

from __future__ import annotations

import torch

from ..spec import GGUF_TYPES as TYPES

BLOCK = 32
# symmetric types: (divisor of the signed extreme, offset), largest code
_SYMMETRIC = {"q4_0": (-8.0, 8.5, 15, 8.0), "q5_0": (-16.0, 16.5, 31, 16.0)}
_WITH_MIN = {"q4_1": 15.0, "q5_1": 31.0}


def _reciprocal(d: torch.Tensor) -> torch.Tensor:
    return torch.where(d == 0, torch.zeros_like(d), 1.0 / torch.where(d == 0, torch.ones_like(d), d))


def _fp16(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float16).to(torch.float32)


def _round_away(x: torch.Tensor) -> torch.Tensor:
    """Round half away from zero, as ggml's roundf (by the same float steps as the package)."""
    a = x.abs()
    floored = torch.floor(a)
    return torch.sign(x) * (floored + torch.floor(2 * (a - floored)))


def quantize_dequantize(weight: torch.Tensor, kind: str) -> torch.Tensor:
    """`weight` (rows x cols, cols a multiple of 32) through llama.cpp's `kind` and back, float32."""
    if kind not in TYPES:
        raise ValueError(f"unknown GGUF type {kind!r}; choose from {', '.join(TYPES)}")
    rows, cols = weight.shape
    if cols % BLOCK:
        raise ValueError(f"{cols} columns are not a multiple of the {BLOCK}-wide GGUF blocks")
    x = weight.detach().to(torch.float32).reshape(-1, BLOCK)
    if kind in _SYMMETRIC:
        divisor, offset, top, centre = _SYMMETRIC[kind]
        extreme = torch.gather(x, 1, x.abs().argmax(dim=1, keepdim=True))
        d = extreme / divisor
        q = torch.trunc(x * _reciprocal(d) + offset).clamp(0, top)
        out = _fp16(d) * (q - centre)
    elif kind in _WITH_MIN:
        top = _WITH_MIN[kind]
        low, high = x.min(dim=1, keepdim=True).values, x.max(dim=1, keepdim=True).values
        d = (high - low) / top
        q = torch.trunc((x - low) * _reciprocal(d) + 0.5).clamp(0, top)
        out = _fp16(d) * q + _fp16(low)
    else:  # q8_0
        d = x.abs().max(dim=1, keepdim=True).values / 127
        q = _round_away(x * _reciprocal(d)).to(torch.int8).to(torch.float32)  # stored as int8: no -0
        out = q * _fp16(d)
    return out.reshape(rows, cols)
