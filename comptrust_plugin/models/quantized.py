"""A quantized checkpoint's weights, loaded as the dense model they define.

compressed-tensors checkpoints go through transformers with that package (decompressed while
loading, or through its quantized forward where the checkpoint quantizes activations); GPTQ and
AWQ checkpoints through packed_int, our own reader. models/loading.py decides when.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import TrustError
from .packed_int import PACKED_METHODS, PackedFormat, dense_state, packed_format
from .registry import require_quantization_packages

# Enters a hub checkpoint's identity: bumped whenever how its quantized weights are read changes
# (2: GPTQ / AWQ by packed_int, compressed-tensors activations through its own forward).
LOADER_REVISION = 2

def checkpoint_quantization(name: str, source: str, kwargs: dict[str, Any], dequantize: bool = False) -> dict[str, Any]:
    """from_pretrained arguments for a quantized checkpoint (a folder, or a hub id whose config is
    read first). Its weights become dense while loading (dense matmuls on every device; the weights
    are the checkpoint's integers x scales): compressed-tensors by its own package (a missing package
    is one line naming its install command), GPTQ and AWQ by packed_int (then the result names the
    local folder and its PackedFormat instead). A compressed-tensors checkpoint that also quantizes
    activations (fp8-dyn, int8-w8a8: `input_activations` in a config group) runs through
    compressed-tensors' own quantized forward instead, which quantizes each Linear's input as the
    config says (transformers' `dequantize=True` would load its weights alone and drop that);
    `dequantize`: weights only all the same, for a caller that attaches the activation
    quantization itself (a stored artifact of a spec)."""
    folder = Path(source)
    if folder.is_dir():
        config = _config_json(folder)
    else:
        from transformers import PretrainedConfig

        try:  # the raw config.json (no code runs), from the hub cache where it is there
            config, _ = PretrainedConfig.get_config_dict(source, revision=kwargs.get("revision"))
        except (OSError, ValueError):
            return {}  # from_pretrained says why in its own words
    quantization = config.get("quantization_config")
    quantization = quantization if isinstance(quantization, dict) else {}
    method = quantization.get("quant_method")
    if method in PACKED_METHODS:
        layout = packed_format(f"--model={name}", quantization)
        local = folder if folder.is_dir() else _hub_snapshot(name, source, kwargs.get("revision"))
        return {"quantization_config": layout, "folder": str(local)}
    require_quantization_packages(f"--model={name}", method)
    if method != "compressed-tensors":
        return {}
    from transformers import CompressedTensorsConfig

    weights_only = dequantize or not quantizes_activations(quantization)
    return {"quantization_config": CompressedTensorsConfig(dequantize=weights_only)}


def quantizes_activations(quantization: dict[str, Any]) -> bool:
    """Whether a compressed-tensors quantization_config quantizes any Linear's input or output."""
    groups = quantization.get("config_groups")
    return isinstance(groups, dict) and any(
        isinstance(group, dict) and (group.get("input_activations") or group.get("output_activations"))
        for group in groups.values()
    )


def _config_json(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _hub_snapshot(name: str, repo: str, revision: str | None) -> Path:
    """A hub checkpoint's config, tokenizer and safetensors, fetched (or found) in the hub cache."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=["*.json", "*.safetensors",
                                                                               "*.model", "*.jinja", "*.txt"]))
    except (OSError, ValueError) as exc:
        raise TrustError(f"--model={name}: cannot fetch its files: {first_line(exc)}") from None


def load_packed(name: str, folder: Path, layout: PackedFormat, dtype: torch.dtype, kwargs: dict[str, Any]) -> Any:
    """A GPTQ or AWQ checkpoint loaded as the dense model its integers and scales define."""
    from safetensors import SafetensorError
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    config = AutoConfig.from_pretrained(str(folder), **{k: v for k, v in kwargs.items() if k != "revision"})
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    try:
        state = dense_state(folder, layout, dtype)
    except (ValueError, KeyError, SafetensorError) as exc:
        raise TrustError(f"--model={name}: cannot read its {layout.method.upper()} weights: {first_line(exc)}"
                         ) from None
    try:
        model_class = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    except KeyError:
        raise TrustError(f"--model={name}: transformers has no causal LM class for its {type(config).__name__}; "
                         f"comptrust reads GPTQ and AWQ checkpoints of the architectures it ships") from None
    return model_class.from_pretrained(None, config=config, state_dict=state, dtype=dtype)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
