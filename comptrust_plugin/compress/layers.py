"""Find the decoder blocks and their Linear layers: what every method compresses.

Embeddings and the LM head stay dense, as in the reference implementations.
"""

from __future__ import annotations

from torch import nn

from ..errors import TrustError

# Attribute paths where decoder blocks live, by model family.
_BLOCK_PATHS = (
    "model.layers",  # llama, mistral, qwen2, gemma, gemma3 (text)
    "model.language_model.layers",  # gemma3 multimodal wrappers
    "model.decoder.layers",  # opt
    "transformer.h",  # gpt2, falcon, bloom
    "gpt_neox.layers",
)


def find_blocks(model: nn.Module) -> nn.ModuleList:
    for path in _BLOCK_PATHS:
        obj: object = model
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList) and len(obj) > 0:
            return obj
    raise TrustError(
        f"cannot find the decoder blocks of {type(model).__name__} (looked for "
        f"{', '.join(_BLOCK_PATHS)}); this architecture is not supported for compression"
    )


def blocks_name(model: nn.Module) -> str:
    """The decoder blocks' name in the model ("model.layers"): Linear names in checkpoints are
    `<blocks name>.<index>.<name inside block>`."""
    blocks = find_blocks(model)
    return next(name for name, module in model.named_modules() if module is blocks)


def block_linears(block: nn.Module) -> dict[str, nn.Linear]:
    """Every nn.Linear inside one decoder block, by qualified name, in definition order."""
    found = {name: mod for name, mod in block.named_modules() if isinstance(mod, nn.Linear)}
    if not found:
        raise TrustError(f"decoder block {type(block).__name__} has no nn.Linear layers to compress")
    return found


def model_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """All compressible Linears: `<block index>.<name inside block>` -> module."""
    out: dict[str, nn.Linear] = {}
    for index, block in enumerate(find_blocks(model)):
        for name, module in block_linears(block).items():
            out[f"{index}.{name}"] = module
    return out
