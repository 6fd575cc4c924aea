"""Which GPUs a run may use, how many xdist workers `-n auto` starts, and pinning a worker to one GPU.

A worker is pinned by narrowing its `CUDA_VISIBLE_DEVICES` to one entry of the caller's list
before CUDA initializes in that process: every later `cuda` / `cuda:0` then means that GPU, so
nothing below this module needs to know about workers. Torch-free unless it must count GPUs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence

from .errors import TrustError

# The caller's GPU list, handed from the xdist controller to each worker (workerinput key).
WORKER_GPU_KEY = "comptrust_gpu"
# Workers `-n auto` starts on a machine without GPUs (see `auto_worker_count`).
CPU_AUTO_WORKERS = 1


def parse_visible_devices(value: str) -> list[str]:
    """Entries of a CUDA_VISIBLE_DEVICES value, as CUDA reads them.

    Entries are indices or UUIDs (`GPU-...`, `MIG-...`); CUDA ignores everything from the first
    invalid entry on (so `-1` or `""` hide every GPU), and so does this function.
    """
    entries: list[str] = []
    for raw in value.split(","):
        entry = raw.strip()
        if entry.isascii() and entry.isdigit():
            entries.append(entry)
        elif entry.startswith(("GPU-", "MIG-")) and len(entry) > 4:
            entries.append(entry)
        else:
            break
    return entries


def _torch_gpu_count() -> int:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def visible_gpus(
    environ: Mapping[str, str] | None = None, count_gpus: Callable[[], int] = _torch_gpu_count
) -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries.

    When the caller set CUDA_VISIBLE_DEVICES, its entries (in its order): worker k gets the
    k-th of them, so `CUDA_VISIBLE_DEVICES=2,5 pytest -n auto` uses GPUs 2 and 5, never 0 and 1.
    Otherwise every GPU the driver reports, as indices 0..n-1.
    """
    environ = os.environ if environ is None else environ
    if "CUDA_VISIBLE_DEVICES" in environ:
        return parse_visible_devices(environ["CUDA_VISIBLE_DEVICES"])
    return [str(i) for i in range(count_gpus())]


def wants_gpu(device_option: str) -> bool:
    """Whether workers should be pinned: only when the device is chosen for them (auto / cuda).

    An explicit `cpu`, `mps` or `cuda:N` is the user's own choice for every worker and is kept.
    """
    return device_option in ("auto", "cuda")


def auto_worker_count(gpus: Sequence[str], device_option: str) -> int:
    """`-n auto`: one worker per visible GPU; on a machine without GPUs, CPU_AUTO_WORKERS (1).

    Why 1 on a CPU: torch already spreads one model's matrix products over every core, so a
    second worker mostly competes for the same cores (and holds a second copy of the model),
    and lowering each worker's thread count could change float reductions, which would break
    "same scores with and without xdist". `-n 2` remains available to whoever measured a gain.
    """
    if gpus and wants_gpu(device_option):
        return len(gpus)
    return CPU_AUTO_WORKERS


def worker_index(worker_id: str) -> int:
    """`gw3` -> 3 (pytest-xdist names its workers gw0, gw1, ...)."""
    digits = worker_id.removeprefix("gw")
    if not (digits.isascii() and digits.isdigit()):
        raise TrustError(f"cannot pin xdist worker {worker_id!r} to a GPU: expected a name like gw0")
    return int(digits)


def gpu_for_worker(worker_id: str, gpus: Sequence[str]) -> str | None:
    """The entry of the caller's GPU list this worker uses (None when there is no GPU).

    With more workers than GPUs, workers share GPUs round-robin over the caller's list
    (gw0 and gw2 on the first of two GPUs): each still sees exactly one GPU.
    """
    if not gpus:
        return None
    return gpus[worker_index(worker_id) % len(gpus)]


def pin_to_gpu(gpu: str, environ: dict[str, str] | None = None) -> None:
    """Make `gpu` the only GPU this process sees. Must run before CUDA initializes here.

    Once CUDA is up, CUDA_VISIBLE_DEVICES is no longer read: a conftest or plugin that touched
    CUDA at import would leave the worker on the wrong GPU, so that is an error, not a guess.
    """
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized() and environ.get("CUDA_VISIBLE_DEVICES") != gpu:
        raise TrustError(
            f"CUDA was initialized before comptrust could pin this worker to GPU {gpu} (a conftest or "
            "plugin used CUDA at import time): move that CUDA call into a fixture or test"
        )
    environ["CUDA_VISIBLE_DEVICES"] = gpu


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA out-of-memory, however torch raised it (older torch: a RuntimeError)."""
    torch = sys.modules.get("torch")
    oom_type = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None) if torch is not None else None
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_gpu_memory() -> None:
    """Return what a released model held to the GPU, so the next config starts from a clean slate.

    Without `empty_cache` torch keeps the freed blocks reserved for this process: the memory the
    next worker on a shared GPU (or nvidia-smi) sees would stay taken.
    """
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def out_of_memory_message(config: str, dimension: str, batch_tokens: int) -> str:
    """One actionable line for an OOM while a config ran (the run goes on with other configs)."""
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f" on GPU {gpu}" if gpu else ""
    return (
        f"out of GPU memory running {config} ({dimension}){where}: set --trust-batch-tokens below "
        f"{batch_tokens} or run fewer xdist workers per GPU (-n); the other configs go on"
    )
