"""Where a model's weights go on a GPU machine: all on the run's GPU, or split over the visible GPUs.

A model whose weights do not fit one GPU's free memory (less a share kept for the KV cache and
activations) is placed across every GPU this process sees by accelerate's device map, one
decoder block per GPU boundary, with each GPU's budget given as `max_memory` (never offloaded
to CPU or disk: a model the GPUs cannot hold is one line, not a run that crawls). The decision
is a pure function of sizes; what it needs from torch and transformers is read at its edges.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import TrustError

# Share of each GPU's free memory kept for the KV cache, activations and CUDA's own buffers.
KEEP_FREE = 0.15
GIB = 1024**3
VLLM_HINT = "--trust-backend=vllm (tensor parallelism over the GPUs it sees)"


@dataclass(frozen=True)
class Placement:
    """`device_map` None: the whole model on the run's device (`model.to(device)`); "auto":
    accelerate splits it over GPUs 0..n-1 within `max_memory` bytes each."""

    device_map: str | None = None
    max_memory: dict[int, int] | None = None
    note: str | None = None  # one line for the run's events

    def from_pretrained_kwargs(self) -> dict[str, Any]:
        return {} if self.device_map is None else {"device_map": self.device_map, "max_memory": self.max_memory}


def _gib(size: float) -> str:
    return f"{size / GIB:.1f} GiB"


def plan_placement(
    name: str, model_bytes: int, free_bytes: Sequence[int], has_accelerate: bool,
) -> Placement:
    """Where a model of `model_bytes` goes, given the free memory of each GPU it may use.

    It stays on one GPU when it fits the first one's free memory less KEEP_FREE. Otherwise, with
    several GPUs (the run named no single one), it is split over them: within free memory less
    KEEP_FREE each where that holds it, else within their free memory (the note says to lower
    --trust-batch-tokens). Raises TrustError when splitting needs accelerate and it is missing,
    or when the GPUs together cannot hold the weights. One GPU that is nearly big enough is
    tried as before (a small batch may still fit)."""
    if not free_bytes:
        return Placement()
    budgets = [int(free * (1 - KEEP_FREE)) for free in free_bytes]
    if model_bytes <= budgets[0]:
        return Placement()
    gpus = len(free_bytes)
    if model_bytes > sum(free_bytes):
        where = "this GPU has" if gpus == 1 else f"the {gpus} visible GPUs have"
        raise TrustError(
            f"--model={name}: its weights need about {_gib(model_bytes)} and {where} {_gib(sum(free_bytes))} free; "
            f"use more GPUs with {VLLM_HINT} or the HF backend, a quantized checkpoint, or --trust-device=cpu"
        )
    if gpus == 1:
        return Placement()
    if not has_accelerate:
        raise TrustError(
            f"--model={name}: its weights (about {_gib(model_bytes)}) do not fit one GPU ({_gib(free_bytes[0])} free); "
            f"pip install accelerate to split them over the {gpus} visible GPUs, or use {VLLM_HINT}"
        )
    tight = model_bytes > sum(budgets)
    memory = list(free_bytes) if tight else budgets
    note = (f"{name}: about {_gib(model_bytes)} of weights split over {gpus} GPUs by accelerate "
            f"({', '.join(_gib(m) for m in memory)} each at most)")
    if tight:
        note += "; little memory is left for the KV cache: lower --trust-batch-tokens after an out-of-memory"
    return Placement("auto", dict(enumerate(memory)), note)


# ------------------------------------------------------------------ its inputs, read at the edges
def has_accelerate() -> bool:
    return importlib.util.find_spec("accelerate") is not None


def free_gpu_bytes(device: Any) -> list[int]:
    """Free memory of the GPUs a model on `device` may use: the one it names (cuda:N), or every
    visible GPU (plain cuda). Empty for a device that is not a CUDA GPU."""
    import torch

    if device.type != "cuda" or not torch.cuda.is_available():
        return []
    indices = [device.index] if device.index is not None else range(torch.cuda.device_count())
    return [int(torch.cuda.mem_get_info(i)[0]) for i in indices]


def weight_bytes(source: str, kwargs: dict[str, Any], dtype: Any) -> int | None:
    """Bytes of a model's parameters and buffers in `dtype`, counted on the meta device from its
    config alone (nothing is read but config.json; tied weights count once). None for a
    checkpoint its config says is quantized (its size in memory is not its dense size)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(source, **kwargs)
    if getattr(config, "quantization_config", None):
        return None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(
            config, dtype=dtype, trust_remote_code=kwargs.get("trust_remote_code", False),
        )
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())
