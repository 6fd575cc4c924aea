"""A compressed config written as a checkpoint others load: what ships is what was gated.

Quantized configs (rtn, gptq, awq) are written in compressed-tensors' `pack-quantized` format,
the one llm-compressor writes and vLLM serves: each quantized Linear's integers packed by
compressed-tensors' own compressor (`weight_packed`, int32 words), its scales (`weight_scale`,
rows x groups) and zero points (`weight_zero_point`, packed the same way), with a
`quantization_config` naming the scheme: asymmetric int, `group` strategy with the group size
(`channel` for g-1); act-order is `actorder: static`, since ours keeps contiguous groups (no
`g_idx`). Our grid is unsigned (q in 0..2**bits-1 with zero point z); compressed-tensors'
is signed, so q and z are both written minus 2**(bits-1): (q - z) x scale is unchanged. Scales
are float32, so the dequantized weight is the gated one bit for bit in any compute dtype
(transformers casts it after the product). A group size that does not divide a Linear's
in_features cannot be written (compressed-tensors has no shorter last group): a one-line error
names the nearest specs that can.

Pruned configs (mag, wanda, sparsegpt) are written as dense safetensors: compressed-tensors
removed its sparse compressors (`sparse-bitmask`, `sparse-24-bitmask`) in 0.16 (their config
classes remain, marked legacy, and nothing decompresses them), so a dense checkpoint is what
today's loaders read. Their sparsity (structure and share of zeros) is stated in the model card
and in `comptrust.json`.

The scheme methods ship in their libraries' formats (compress/export_schemes.py): fp8 in
compressed-tensors' `float-quantized`, int8-w8a8 in its `int-quantized` (both with their dynamic
per-token activations in the config), nf4 and fp4 in bitsandbytes' serialized 4-bit format. GGUF
types are not written: llama.cpp's own tools write GGUF files.

Every folder holds config.json, model safetensors, the tokenizer, generation_config.json,
`comptrust.json` (spec, method version, calibration identity, the model it came from) and a
model card (README.md) that states them and, after a gated run, the gate's verdicts.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import TrustError
from ..models.registry import INSTALL_HINTS
from ..spec import CompressionSpec
from .export_schemes import bnb_config, ct_format, ct_quantization_config, scheme_tensors
from .grid import Grid
from .layers import blocks_name, model_linears
from .nf4 import KINDS as NF4_KINDS

MARKER = "comptrust.json"  # names a folder this module wrote (and may replace)
_GROUP_SIZES = (16, 32, 64, 128, 256, 512, 1024)


def compressed_tensors() -> Any:
    """The compressed-tensors modules export packs with; a one-line error when missing."""
    try:
        from compressed_tensors.compressors import BaseCompressor
        from compressed_tensors.quantization import QuantizationScheme
    except ImportError:
        raise TrustError("writing a quantized config as a checkpoint needs compressed-tensors; "
                         f"run: {INSTALL_HINTS['compressed_tensors']}") from None
    return BaseCompressor, QuantizationScheme


def quantized_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The Linears a quantizer compresses, by their name in the model (checkpoint keys)."""
    prefix = blocks_name(model)
    return {f"{prefix}.{name}": linear for name, linear in model_linears(model).items()}


def export_problem(spec: CompressionSpec, in_features: Mapping[str, int]) -> str | None:
    """Why `spec` cannot be written for Linears of these widths (None: it can)."""
    if not spec.is_quantization or spec.group_size == -1:
        return None
    ragged = sorted(name for name, width in in_features.items() if width % spec.group_size)
    if not ragged:
        return None
    widths = sorted(set(in_features.values()))
    fits = [g for g in _GROUP_SIZES if all(w % g == 0 for w in widths)]
    below = [g for g in fits if g < spec.group_size]
    above = [g for g in fits if g > spec.group_size]
    nearest = [g for g in (below[-1] if below else None, above[0] if above else None) if g is not None] + [-1]
    names = ", ".join(replace(spec, group_size=g).canonical for g in nearest)
    width = in_features[ragged[0]]
    more = f" (and {len(ragged) - 1} more)" if len(ragged) > 1 else ""
    return (
        f"--compress={spec.canonical}: group size {spec.group_size} does not divide in_features {width} of "
        f"{ragged[0]}{more}, and compressed-tensors has no shorter last group; exportable: {names}"
    )


def scheme_config(spec: CompressionSpec) -> dict[str, Any]:
    """The weights' quantization args as compressed-tensors writes them in config.json."""
    assert spec.bits is not None
    grouped = spec.group_size != -1
    return {
        "num_bits": spec.bits, "type": "int", "symmetric": False,
        "strategy": "group" if grouped else "channel", "group_size": spec.group_size if grouped else None,
        "dynamic": False, "actorder": "static" if spec.act_order else None, "observer": None,
    }


def quantization_config(spec: CompressionSpec) -> dict[str, Any]:
    return {
        "quant_method": "compressed-tensors",
        "format": "pack-quantized",
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"], "weights": scheme_config(spec),
                "input_activations": None, "output_activations": None, "format": "pack-quantized",
            }
        },
        "ignore": ["lm_head"],
        "kv_cache_scheme": None,
    }


def packed_tensors(name: str, weight: torch.Tensor, grid: Grid, spec: CompressionSpec) -> dict[str, torch.Tensor]:
    """One Linear's checkpoint tensors, packed by compressed-tensors from our grid.

    Checks first that the weight lies on the grid (each value is scale x an integer step, as
    rounded to the weight's dtype), so a weight changed after quantizing (or a grid that is not
    its own) is an error, not a silent re-rounding; the grid values themselves are packed."""
    base, scheme_class = compressed_tensors()
    if grid.bits != spec.bits or grid.group_size != spec.group_size:
        raise TrustError(f"{name}: its grid ({grid.bits} bits, g{grid.group_size}) is not "
                         f"--compress={spec.canonical}'s")
    rows, cols = weight.shape
    groups = grid.scale.shape[1]
    width = cols if grid.group_size == -1 else grid.group_size
    w = weight.float().reshape(rows, groups, width)
    scale, zero = grid.scale.float().unsqueeze(-1), grid.zero.float().unsqueeze(-1)
    # clamped to the grid: in bf16 an 8-bit grid's outer points are not all representable, so a
    # stored weight can read as a step past the end that rounds to the same bf16 value
    steps = torch.clamp(torch.round(w / scale), -zero, 2**grid.bits - 1 - zero)
    exact = scale * steps
    if not torch.equal(exact.to(weight.dtype).float(), w):
        raise TrustError(f"{name}: its weight is not on its recorded grid; "
                         "rebuild the config (clear its stored artifact)")
    scheme = scheme_class(targets=["Linear"], weights=scheme_config(spec))
    offset = 2 ** (grid.bits - 1)
    state = {
        "weight": exact.reshape(rows, cols),
        "weight_scale": grid.scale.float().reshape(rows, groups),
        "weight_zero_point": (grid.zero - offset).to(torch.int8).reshape(rows, groups),
    }
    packed = base.get_value_from_registry("pack-quantized").compress(state, scheme)
    return {f"{name}.{key}": value.contiguous() for key, value in packed.items()}


def sparsity_facts(model: nn.Module, spec: CompressionSpec) -> dict[str, Any]:
    linears = quantized_linears(model)
    zeros = sum(int((linear.weight == 0).sum()) for linear in linears.values())
    total = sum(linear.weight.numel() for linear in linears.values())
    structure = f"{spec.n_m[0]}:{spec.n_m[1]}" if spec.n_m else "unstructured"
    return {"structure": structure, "share_of_zeros": round(zeros / total, 6), "linears": len(linears)}


def write_checkpoint(
    model: nn.Module, tokenizer: Any, spec: CompressionSpec, grids: Mapping[str, Grid], target: Path,
    provenance: Mapping[str, Any],
) -> Path:
    """Write `model` (compressed per `spec`, in memory; for nf4 / fp4 the dense model, which
    bitsandbytes quantizes while writing) to `target` as a self-contained checkpoint.

    `grids`: each quantized Linear's grid (from compressing it). `provenance`: what `comptrust.json`
    and the model card state (model, spec identity, method version, calibration). The folder is
    written beside `target` and renamed into place; a `target` holding something other than an
    earlier export is left alone (one-line error)."""
    check_target(target)
    quantized = spec.is_quantization
    if quantized or ct_format(spec) is not None:
        compressed_tensors()
    if quantized:
        linears = quantized_linears(model)
        problem = export_problem(spec, {name: linear.in_features for name, linear in linears.items()})
        if problem:
            raise TrustError(problem)
        missing = sorted(set(linears) - set(grids))
        if missing:
            raise TrustError(f"--compress={spec.canonical}: no recorded grid for {missing[0]} "
                             f"(and {len(missing) - 1} more); rebuild the config (clear its stored artifact)")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        if spec.method in NF4_KINDS:
            form = _save_bitsandbytes(model, spec, partial)
        else:
            form = save_weights(model, spec, grids, partial)  # packed: every check above passed
        if tokenizer is not None:
            tokenizer.save_pretrained(partial)
        facts = {"spec": spec.canonical, **dict(provenance)}
        if spec.is_pruning:
            facts["sparsity"] = sparsity_facts(model, spec)
        facts["format"] = _with_writer(form)
        if quantized:
            facts["quantization"] = scheme_config(spec)
        elif spec.is_scheme:
            facts["quantization"] = json.loads((partial / "config.json").read_text())["quantization_config"]
        (partial / MARKER).write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (partial / "README.md").write_text(model_card(facts, None), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target


def _with_writer(form: str) -> str:
    """The format, naming the release that wrote it where its layout changed between releases."""
    from importlib.metadata import version

    if form.endswith("pack-quantized"):
        # its packing of widths that do not divide 32 changed between releases (0.16: 32 // bits
        # values per word; 0.20.1: dense across words)
        return f"{form} (packed by compressed-tensors {version('compressed-tensors')})"
    if form.startswith("bitsandbytes"):
        return f"{form} (quantized by bitsandbytes {version('bitsandbytes')})"
    return form


def not_exportable(spec: CompressionSpec) -> str | None:
    """Why `spec`'s compression cannot be written as a checkpoint here (one line), or None."""
    if spec.method == "gguf":
        return (f"--compress={spec.canonical}: a GGUF type ships as a GGUF file, which llama.cpp's convert and "
                "quantize tools write (this config gates their numerics); not exported")
    return None


def export_package(spec: CompressionSpec) -> str | None:
    """The package writing `spec` as a checkpoint needs (its import name), or None."""
    if spec.method in NF4_KINDS:
        return "bitsandbytes"
    return "compressed_tensors" if spec.is_quantization or ct_format(spec) is not None else None


def packable(model: nn.Module, spec: CompressionSpec, grids: Mapping[str, Grid]) -> bool:
    """Whether `spec`'s weights can be stored packed: fp8 and int8-w8a8 (compressed-tensors'
    8-bit formats), or a grid quantizer with every Linear's grid recorded and a group size the
    format takes; compressed-tensors installed. nf4 / fp4 are stored dense: bitsandbytes' format
    is written from the dense weights (export_schemes)."""
    if importlib.util.find_spec("compressed_tensors") is None:
        return False
    if spec.is_scheme:
        return ct_format(spec) is not None
    if not spec.is_quantization:
        return False
    linears = quantized_linears(model)
    widths = {name: linear.in_features for name, linear in linears.items()}
    return set(linears) <= set(grids) and export_problem(spec, widths) is None


def save_weights(model: nn.Module, spec: CompressionSpec, grids: Mapping[str, Grid], folder: Path) -> str:
    """A compressed model's weights into `folder` (the artifact store's copy): packed where
    `packable` (about a quarter of the disk at 4 bits, half at 8; the folder vLLM is handed,
    which quantizes fp8-dyn's and int8-w8a8's activations from its config), else dense
    safetensors. Returns the format written."""
    model.save_pretrained(folder, safe_serialization=True)
    if not packable(model, spec, grids):
        return "dense safetensors"
    linears = quantized_linears(model)
    form = ct_format(spec)
    if form is not None:
        weights = {name: linear.weight.data for name, linear in linears.items()}
        _replace_saved(folder, scheme_tensors(weights, spec), ct_quantization_config(spec))
        return f"compressed-tensors {form}"
    packed = {name: packed_tensors(name, linear.weight.data, grids[name], spec) for name, linear in linears.items()}
    _replace_saved(folder, packed, quantization_config(spec))
    return "compressed-tensors pack-quantized"


def _save_bitsandbytes(model: nn.Module, spec: CompressionSpec, folder: Path) -> str:
    """`model` (dense) into `folder` with its Linears quantized by bitsandbytes to `spec`'s 4 bits."""
    model.save_pretrained(folder, safe_serialization=True)
    weights = {name: linear.weight.data for name, linear in quantized_linears(model).items()}
    dtype = next(iter(weights.values())).dtype
    _replace_saved(folder, scheme_tensors(weights, spec), bnb_config(spec, dtype))
    return f"bitsandbytes {spec.method} (block {spec.block}{', double quant' if spec.double_quant else ''})"


def check_target(target: Path) -> None:
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / MARKER).is_file())):
        raise TrustError(f"{target}: exists and is not an earlier comptrust export; name a new or empty folder")


def _replace_saved(
    folder: Path, tensors: Mapping[str, Mapping[str, torch.Tensor]], config: Mapping[str, Any]
) -> None:
    """Replace each named Linear's saved weight by its checkpoint `tensors`, shard by shard, and
    add `config` as config.json's quantization_config."""
    from safetensors.torch import load_file, save_file

    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else None
    for shard in sorted(folder.glob("*.safetensors")):
        saved = load_file(shard)
        changed = False
        for name, packed in tensors.items():
            key = f"{name}.weight"
            if key not in saved:
                continue
            saved.pop(key)
            saved.update(packed)
            changed = True
            if index is not None:
                index["weight_map"].pop(key, None)
                index["weight_map"].update(dict.fromkeys(packed, shard.name))
        if changed:
            save_file(saved, shard, metadata={"format": "pt"})
    if index is not None:
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    config_path = folder / "config.json"
    saved_config = json.loads(config_path.read_text())
    saved_config["quantization_config"] = dict(config)
    config_path.write_text(json.dumps(saved_config, indent=2, sort_keys=True) + "\n")


def model_card(facts: Mapping[str, Any], verdicts: Sequence[Mapping[str, Any]] | None) -> str:
    """README.md of an exported folder: what it is, how it was made, what the gate said."""
    lines = [
        f"# {facts.get('model_name', 'model')} — {facts['spec']}",
        "",
        f"Compressed by comptrust ({facts['spec']}) and written as {facts['format']}.",
        "",
        "| | |",
        "|---|---|",
        f"| spec | `{facts['spec']}` |",
    ]
    for key in ("method_version", "calibration", "quantization", "sparsity", "model"):
        if facts.get(key) is not None:
            lines.append(f"| {key.replace('_', ' ')} | `{json.dumps(facts[key], sort_keys=True)}` |")
    lines.append("")
    if verdicts is None:
        lines.append("Not gated: written by `comptrust export`; run the trust tests against it with "
                     "`pytest --trust-compress=hub:THIS_FOLDER`.")
    else:
        lines += ["## Trust gate", "", "| dimension | dense | compressed | delta | verdict |", "|---|---|---|---|---|"]
        for row in verdicts:
            lines.append(
                f"| {row['dimension']} | {_number(row.get('dense'))} | {_number(row.get('compressed'))} | "
                f"{_number(row.get('delta'))} | {row.get('verdict', '')} |"
            )
    return "\n".join(lines) + "\n"


def _number(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def write_verdicts(target: Path, verdicts: Sequence[Mapping[str, Any]]) -> None:
    """Add the gate's verdicts to an exported folder's model card and comptrust.json."""
    marker = target / MARKER
    facts = json.loads(marker.read_text(encoding="utf-8"))
    facts["verdicts"] = [dict(v) for v in verdicts]
    marker.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (target / "README.md").write_text(model_card(facts, verdicts), encoding="utf-8")
