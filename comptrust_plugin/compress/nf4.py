"""bitsandbytes' blockwise 4-bit quantization (NF4, FP4), simulated: quantized and dequantized as bitsandbytes does.

The weight is flattened row-major and cut into blocks of `block` consecutive values (across rows;
a shorter last block keeps its own scale). Per block, in float32:
- absmax = max |x|; x is scaled by the reciprocal 1/max(absmax, 1e-38) and clamped to [-1, 1]
  (the short last block is divided by max(absmax, 1e-38) instead, and stores that clamped absmax);
- the code is the nearest entry of the 16-value table: the number of midpoints between consecutive
  sorted entries that lie strictly below the scaled value (a value on a midpoint takes the lower
  entry). NF4 is QLoRA's NormalFloat table; FP4 is bitsandbytes' 1-sign, 2-exponent, 1-mantissa
  float over 12, whose two zeros tie: scaled values in (-0.0026, 0] take code 0b0000 (+0), those in
  (0, 0.0026] code 0b1000, which decodes to -0.0 (bitsandbytes' quantizer tables it as +0, its CPU
  decoder as -0: a small positive weight comes back as -0.0, a signed zero);
- value = table[code] x absmax (one float32 product).
With double quant (`compress_statistics`), the absmaxes are stored as 8 bits: their mean is
subtracted, the differences are quantized in blocks of 256 on the signed 8-bit dynamic map (dynamic
exponent + fraction, Dettmers 2015) and the mean added back after decoding. That 8-bit quantizer is
bitsandbytes' CPU C kernel, which rounds through a 65536-entry table rather than to the truly nearest
code: the scaled difference t (times the float32 reciprocal of the block's max |difference|, clamped)
goes to grid index trunc(65535 (t + 1) / 2 + 0.5) (the kernel's fma; rounding the product first gives
the same index for every float32 t), and each grid point -1 + 2i/65535 to the code nearest to it
(midpoints strictly below): near a code midpoint this can differ from the truly nearest code. A
block of all-equal absmaxes stores code 0 and scale 0, which decodes to -0.0 + mean.

Equals bitsandbytes 0.50.2 on CPU: `F.dequantize_4bit(*F.quantize_4bit(w, blocksize=block,
quant_type=kind, compress_statistics=double_quant))` (its default torch `quantize_4bit` kernel, its C
`quantize_blockwise` / `dequantize_blockwise` / `dequantize_4bit` kernels), bit for bit, signed zeros
included. The tests compare the two (bitsandbytes a dev dependency) on the embedded SmolLM2 model's
decoder-block Linears, on edge blocks (zeros, ties, midpoints, short last blocks, bf16 / fp16), and
the 8-bit path on every boundary of its grid (it was also checked once on every float32 in [-1, 1]).
Input is made float32 first (exact for float32, bfloat16, float16, which is what bitsandbytes does
too), and the work is done on the CPU (a CUDA mean would sum in another order); the result is
float32, on the weight's device. For a bfloat16 (float16) weight bitsandbytes decodes straight to
bfloat16 (float16) by rounding the same float32 product to nearest even, so the float32 result here
cast to the weight's dtype is bitsandbytes' own.

Which tensors: every decoder-block Linear weight; the embeddings and output head stay dense, as
transformers' bitsandbytes 4-bit replacement (Linear4bit for nn.Linear, `llm_int8_skip_modules`
keeping lm_head) does by default.
"""

from __future__ import annotations

from functools import cache

import torch

KINDS = ("nf4", "fp4")
DEFAULT_BLOCK = 64
BLOCKS = (32, 64, 128, 256, 512, 1024, 2048, 4096)  # what bitsandbytes' quantize_4bit accepts
ABSMAX_BLOCK = 256  # double quant: block of the 8-bit absmax quantization
_TINY = 1e-38  # floor of the absmax that is divided by
_GRID = 65536  # the C 8-bit quantizer's rounding table

# NF4 (NormalFloat4, QLoRA: Dettmers et al. 2023; bitsandbytes' get_4bit_type("nf4")), by 4-bit code.
_NF4 = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)
# FP4 (bitsandbytes' get_4bit_type("fp4")): codes 0bseem, exponent bias 2, the magnitude of codes
# 0b000..0b111 in twelfths (0, subnormal 0.0625, 8, 12, 4, 6, 2, 3); the sign bit negates.
_FP4_TWELFTHS = (0.0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0)


@cache
def _table(kind: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(value of each code, midpoints between the sorted values, code of each sorted position)."""
    if kind == "nf4":
        values = torch.tensor(_NF4, dtype=torch.float32)
    else:
        magnitudes = torch.tensor(_FP4_TWELFTHS, dtype=torch.float32) / 12.0
        values = torch.cat([magnitudes, -magnitudes])  # code 0b1000 is -0.0
    ordered, codes = torch.sort(values, stable=True)  # the zeros tie: +0 (code 0) sorts first
    return values, (ordered[:-1] + ordered[1:]) / 2, codes


@cache
def dynamic_map() -> torch.Tensor:
    """bitsandbytes' signed 8-bit dynamic map (create_dynamic_map()): for exponent e = 0..6, 2**e
    fractions, the centres of equal steps over [0.1, 1], times 10**(e - 6), with both signs; plus 0
    and 1; sorted (256 values, from -0.99297 to 1)."""
    values = [0.0, 1.0]
    for e in range(7):
        edges = torch.linspace(0.1, 1.0, 2**e + 1, dtype=torch.float32)
        centres = (edges[:-1] + edges[1:]) / 2 * 10.0 ** (e - 6)
        values += centres.tolist() + (-centres).tolist()
    return torch.tensor(sorted(values), dtype=torch.float32)


@cache
def _grid_codes() -> torch.Tensor:
    """The code the C 8-bit quantizer gives each of its grid points -1 + 2i/65535 (float32 steps)."""
    code = dynamic_map()
    points = (2.0 * torch.arange(_GRID, dtype=torch.float32)) / float(_GRID - 1) - 1.0
    return torch.searchsorted((code[:-1] + code[1:]) * 0.5, points, side="left")


def quantize_dequantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """1-D float32 CPU tensor through bitsandbytes' CPU quantize_blockwise / dequantize_blockwise
    (dynamic map, blocks of 256), back as float32: the double quant of the absmaxes."""
    n = x.numel()
    pad = -n % ABSMAX_BLOCK
    blocks = torch.nn.functional.pad(x, (0, pad)).view(-1, ABSMAX_BLOCK)  # zero padding leaves maxima alone
    scale = blocks.abs().amax(dim=1, keepdim=True)
    t = (blocks * (1.0 / scale)).clamp(-1.0, 1.0)
    half = (t + 1.0) * 0.5
    position = (half.double() * (_GRID - 1) + 0.5).float()  # exact in float64, then one rounding: the fma
    index = torch.nan_to_num(position, nan=0.0).trunc().long()  # NaN (a subnormal scale's 0 x inf) casts to 0 there
    index = torch.where(scale == 0, torch.zeros_like(index), index)  # an all-zero block stores code 0
    return (dynamic_map()[_grid_codes()[index]] * scale).reshape(-1)[:n]


def quantize_dequantize(
    weight: torch.Tensor, kind: str, block: int = DEFAULT_BLOCK, double_quant: bool = False
) -> torch.Tensor:
    """weight (any shape, any float dtype) through bitsandbytes' 4-bit `kind` and back; float32, same shape."""
    if kind not in KINDS:
        raise ValueError(f"unknown bitsandbytes 4-bit type {kind!r}; choose from {', '.join(KINDS)}")
    if isinstance(block, bool) or not isinstance(block, int) or block not in BLOCKS:
        raise ValueError(f"bitsandbytes' 4-bit block size must be one of {', '.join(map(str, BLOCKS))}, not {block!r}")
    values, midpoints, codes = _table(kind)
    x = weight.detach().reshape(-1).to("cpu", torch.float32)  # on the CPU, where bitsandbytes' numerics are
    n = x.numel()
    full = n - n % block
    head = x[:full].view(-1, block)
    absmax = head.abs().amax(dim=1) if full else x.new_zeros(0)
    scaled = (head * (1.0 / absmax.clamp(min=_TINY)).unsqueeze(1)).clamp(-1.0, 1.0).reshape(-1)
    if full < n:
        tail = x[full:]
        tail_absmax = tail.abs().amax().clamp(min=_TINY)
        absmax = torch.cat([absmax, tail_absmax.reshape(1)])
        scaled = torch.cat([scaled, (tail / tail_absmax).clamp(-1.0, 1.0)])
    code = codes[torch.bucketize(scaled, midpoints)]
    if double_quant:
        offset = absmax.mean()
        absmax = quantize_dequantize_8bit(absmax - offset) + offset
    scale = absmax.repeat_interleave(block)[:n]
    return (values[code] * scale).reshape(weight.shape).to(weight.device)
