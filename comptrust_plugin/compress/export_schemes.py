"""The scheme methods written as the checkpoints their libraries load (fp8, int8-w8a8, nf4, fp4).

fp8, fp8-tensor and fp8-dyn go to compressed-tensors' `float-quantized` format, int8-w8a8 to
`int-quantized`: the ones llm-compressor writes for its FP8, FP8_DYNAMIC and W8A8 schemes and vLLM
serves. Each decoder-block Linear stores `weight` (float8_e4m3fn or int8) and `weight_scale`
(rows x 1 per channel, one value per tensor), in the model's dtype; config.json's
quantization_config names the scheme: symmetric 8-bit `float` or `int` weights, `channel` or
`tensor` strategy, and for fp8-dyn and int8-w8a8 dynamic per-token input activations of the same
type (computed at run time: nothing stored). int8-w8a8's SmoothQuant smoothing is already folded
into the stored norm weights and Linear weights (the float model it leaves computes the same thing).

The scales are read back from the gated weights, which is all a stored config keeps: for each row
(or the tensor) the largest |w| is the grid's extreme (448 steps of e4m3, 127 or 128 int8 steps)
times the scale, and of the few scales in the dtype near |w| / extreme the first that puts every
value of the row on the grid is taken (the steps found in float32, their product with the scale
rounded to the dtype, as the decompression computes it). compressed-tensors' own compressor then
quantizes the weight with it (in float32: in bfloat16 its w / scale would itself round by up to half
an int8 step), and its own decompression, from the scale in the model's dtype, must give the gated
weight back bit for bit: anything else is an error, never a silent re-rounding.

nf4 and fp4 (every block size, double quant too) go to the format transformers writes when it
saves a bitsandbytes 4-bit model: `weight` as packed uint8 (two codes a byte) plus the
QuantState's tensors (`absmax`, `quant_map`, with double quant `nested_absmax` and
`nested_quant_map`, and the packed `quant_state.bitsandbytes__<kind>` holding block size, shape,
dtype), made by bitsandbytes' own `quantize_4bit` and `QuantState.as_dict(packed=True)` from the
*dense* weights (double quant cannot be recovered from the dequantized ones). Every Linear's
bitsandbytes dequantization is checked equal to the weight the gate ran (compress/nf4.py's
simulation of the same dense weight). transformers (with bitsandbytes) loads such a folder on the
CPU too, the block size coming from each weight's stored quant state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..errors import TrustError
from ..models.registry import INSTALL_HINTS
from ..spec import CompressionSpec
from .nf4 import KINDS as NF4_KINDS
from .nf4 import quantize_dequantize as nf4_round_trip
from .w8a8 import round_trip

_EXTREME_STEPS = {"fp8": (448.0,), "int8": (127.0, 128.0)}  # |q| of a row's largest |w|
_NEIGHBOURS = 4  # dtype steps tried on either side of |w| / extreme


def ct_format(spec: CompressionSpec) -> str | None:
    """compressed-tensors' format name for a scheme spec (None: not one of its schemes)."""
    if spec.method == "fp8":
        return "float-quantized"
    if spec.method == "int8":
        return "int-quantized"
    return None


def _kind(spec: CompressionSpec) -> str:
    return "fp8" if spec.method == "fp8" else "int8"


def weight_args(spec: CompressionSpec) -> dict[str, Any]:
    """The weights' quantization args as compressed-tensors writes them in config.json."""
    return {
        "num_bits": 8, "type": "float" if spec.method == "fp8" else "int", "symmetric": True,
        "strategy": "tensor" if spec.per_tensor else "channel", "group_size": None, "dynamic": False,
        "actorder": None, "observer": None,
    }


def activation_args(spec: CompressionSpec) -> dict[str, Any] | None:
    """Dynamic per-token input activations (fp8-dyn, int8-w8a8), or None (weights only)."""
    if spec.activations is None:
        return None
    return {
        "num_bits": 8, "type": "float" if spec.activations == "fp8" else "int", "symmetric": True,
        "strategy": "token", "group_size": None, "dynamic": True, "actorder": None, "observer": None,
    }


def ct_quantization_config(spec: CompressionSpec) -> dict[str, Any]:
    form = ct_format(spec)
    return {
        "quant_method": "compressed-tensors",
        "format": form,
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"], "weights": weight_args(spec), "input_activations": activation_args(spec),
                "output_activations": None, "format": form,
            }
        },
        "ignore": ["lm_head"],
        "kv_cache_scheme": None,
    }


def grid_scales(name: str, weight: torch.Tensor, kind: str, per_tensor: bool) -> torch.Tensor:
    """The scale (per row, rows x 1; or one, shape (1,)) that puts every value of `weight` on
    `kind`'s symmetric 8-bit grid, in the weight's dtype, read back from the weight itself."""
    rows = weight.reshape(1, -1) if per_tensor else weight
    extreme = rows.abs().amax(dim=1, keepdim=True)
    tiny = torch.tensor(torch.finfo(weight.dtype).eps, dtype=weight.dtype)
    candidates = []
    for steps in _EXTREME_STEPS[kind]:
        centre = (extreme.double() / steps).to(weight.dtype)
        up = down = centre
        candidates.append(centre)
        for _ in range(_NEIGHBOURS):
            up = torch.nextafter(up, torch.full_like(up, float("inf")))
            down = torch.nextafter(down, torch.zeros_like(down))
            candidates += [up, down]
    chosen = torch.full_like(extreme, float("nan"))
    for scale in candidates:
        scale = torch.where(extreme == 0, tiny, scale)  # an all-zero row: the package's epsilon scale
        # steps found in float32 (in bf16, w / scale itself rounds by up to half an int8 step), their
        # product rounded to the dtype: the compressed-tensors decompression of steps and scale
        back = round_trip(rows.float(), scale.float(), kind).to(weight.dtype)
        fits = torch.isnan(chosen) & (back == rows).all(dim=1, keepdim=True)
        chosen = torch.where(fits, scale, chosen)
    if torch.isnan(chosen).any():
        row = int(torch.isnan(chosen).reshape(-1).nonzero()[0])
        where = "" if per_tensor else f" (row {row})"
        raise TrustError(f"{name}: its weight{where} is not on a symmetric {kind} grid; "
                         "rebuild the config (clear its stored artifact)")
    return chosen.reshape(1) if per_tensor else chosen


def ct_tensors(name: str, weight: torch.Tensor, spec: CompressionSpec) -> dict[str, torch.Tensor]:
    """One Linear's checkpoint tensors (`weight` in 8 bits, `weight_scale`), written by
    compressed-tensors' own compressor and checked by its own decompression."""
    try:
        from compressed_tensors.compressors import BaseCompressor
        from compressed_tensors.quantization import QuantizationScheme
    except ImportError:
        raise TrustError("writing an fp8 or int8 config as a checkpoint needs compressed-tensors; "
                         f"run: {INSTALL_HINTS['compressed_tensors']}") from None
    scale = grid_scales(name, weight, _kind(spec), spec.per_tensor)
    scheme = QuantizationScheme(targets=["Linear"], weights=weight_args(spec), input_activations=activation_args(spec))
    compressor = BaseCompressor.get_value_from_registry(ct_format(spec))
    # quantized in float32 (the steps grid_scales found), the scale stored in the model's dtype
    packed = compressor.compress({"weight": weight.float(), "weight_scale": scale.float()}, scheme)
    packed["weight_scale"] = scale
    back = compressor.decompress(dict(packed), scheme)["weight"]
    if back.dtype != weight.dtype or not torch.equal(back, weight):
        raise TrustError(f"{name}: compressed-tensors does not give its gated weight back from "
                         f"{ct_format(spec)}; not written")
    return {f"{name}.{key}": value.contiguous() for key, value in packed.items()}


def bnb_config(spec: CompressionSpec, dtype: torch.dtype) -> dict[str, Any]:
    """config.json's quantization_config of a bitsandbytes 4-bit checkpoint (transformers' own)."""
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type=spec.method, bnb_4bit_use_double_quant=spec.double_quant,
        bnb_4bit_compute_dtype=dtype, bnb_4bit_quant_storage=torch.uint8,
    )
    return config.to_dict()


def bnb_tensors(name: str, dense: torch.Tensor, spec: CompressionSpec) -> dict[str, torch.Tensor]:
    """One Linear's bitsandbytes 4-bit tensors from its dense weight, quantized by bitsandbytes
    (on the CPU, where its numerics were checked) and checked against the gated numerics."""
    try:
        from bitsandbytes import functional as bnb
    except ImportError:
        raise TrustError(f"writing an {spec.method} config as a checkpoint needs bitsandbytes; "
                         f"run: {INSTALL_HINTS['bitsandbytes']}") from None
    assert spec.block is not None and spec.method in NF4_KINDS
    weight = dense.detach().to("cpu").contiguous()
    codes, state = bnb.quantize_4bit(weight, blocksize=spec.block, quant_type=spec.method,
                                     compress_statistics=spec.double_quant, quant_storage=torch.uint8)
    gated = nf4_round_trip(weight, spec.method, spec.block, spec.double_quant).to(weight.dtype)
    if not torch.equal(bnb.dequantize_4bit(codes, state), gated):
        raise TrustError(f"{name}: bitsandbytes' {spec.method} does not give the gated weight; not written")
    tensors = {f"{name}.weight": codes}
    tensors.update({f"{name}.weight.{key}": value for key, value in state.as_dict(packed=True).items()})
    return {key: value.contiguous() for key, value in tensors.items()}


def scheme_tensors(
    linears: Mapping[str, torch.Tensor], spec: CompressionSpec
) -> dict[str, dict[str, torch.Tensor]]:
    """Each Linear's checkpoint tensors, by Linear name (weights: gated for fp8/int8, dense for nf4/fp4)."""
    if spec.method in NF4_KINDS:
        return {name: bnb_tensors(name, weight, spec) for name, weight in linears.items()}
    return {name: ct_tensors(name, weight, spec) for name, weight in linears.items()}
