"""Load a model + tokenizer from the registry entry: embedded GGUF, hub, or local directory.

Embedded GGUF files are dequantized once (about 9 s here) and stored as safetensors under the
cache directory, so every later load takes well under 2 s. Checkpoints are read from
safetensors only (no pickle), and `trust_remote_code` is off unless the user passes the flag.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import CorruptWeights, TrustError
from ..storage import build_folder, discard_folder, sha256_file
from .packed_int import PackedFormat
from .placement import Placement, free_gpu_bytes, has_accelerate, plan_placement, weight_bytes
from .quantized import checkpoint_quantization, first_line, load_packed
from .registry import ModelEntry, embedded_gguf_path

DEQUANTIZED = "dequantized model"  # how warnings about the embedded model's cache name it

DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}


@dataclass
class LoadedModel:
    model: Any  # a transformers PreTrainedModel
    tokenizer: Any
    entry: ModelEntry
    device: torch.device
    dtype: torch.dtype
    load_seconds: float
    note: str | None = None  # how the weights were placed, where that is news (split over GPUs)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TrustError(f"--trust-device={name}: not a torch device (try cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrustError(f"--trust-device={name}: CUDA is not available here; use --trust-device=cpu")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto`: bf16 on GPUs that support it (else fp16); on a CPU, bf16 where it has bf16 or
    AVX-512 matrix instructions (about 2x faster than fp32 there), else fp32: without them torch
    emulates bf16 matrix products, about 10x slower than fp32 (measured on an AVX2-only CPU)."""
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    if name not in DTYPES:
        raise TrustError(f"--trust-dtype={name}: choose one of auto, {', '.join(DTYPES)}")
    return DTYPES[name]


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products natively (oneDNN's own check: AVX-512 or
    AMX), read from /proc/cpuinfo's flags where torch does not say."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        pass
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16", "avx512bw"))


def accelerator_name(device: torch.device) -> str:
    """What computed the numbers: "cpu", or the GPU's model name (numerics differ between them)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _quiet_transformers() -> None:
    """Progress bars from weight loading would flood every test's captured output."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_tokenizer(entry: ModelEntry, cache_dir: Path, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    _quiet_transformers()
    source, kwargs = pretrained_source(entry, cache_dir, trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise TrustError(f"--model={entry.name}: cannot load its tokenizer: {_explain(exc)}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(
    entry: ModelEntry,
    cache_dir: Path,
    device: torch.device,
    dtype: torch.dtype,
    trust_remote_code: bool = False,
    weights_dir: Path | None = None,
    allow_pickle: bool = False,
) -> LoadedModel:
    """Load weights onto `device` in `dtype`; `weights_dir` overrides where weights come from
    (a stored compressed artifact, loaded as weights only: the engine attaches its spec's
    activation quantization) while config and tokenizer still come from `entry`.

    Unreadable safetensors raise CorruptWeights (naming the folder); the dequantized embedded
    model, being our own cache, is instead quarantined and rebuilt once."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    start = time.perf_counter()
    placement = Placement()
    source, kwargs = pretrained_source(entry, cache_dir, trust_remote_code)
    tokenizer = load_tokenizer(entry, cache_dir, trust_remote_code)
    folder = str(weights_dir) if weights_dir else source
    use_safetensors = refuse_hostile(entry.name, Path(folder), trust_remote_code, allow_pickle)
    try:
        quantization = checkpoint_quantization(entry.name, folder, kwargs, dequantize=weights_dir is not None)
        if isinstance(quantization.get("quantization_config"), PackedFormat):
            model = load_packed(entry.name, Path(quantization["folder"]), quantization["quantization_config"],
                                 dtype, kwargs)
        else:
            placement = _placement(entry.name, folder, kwargs, dtype, device) if not quantization else Placement()
            model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=dtype, use_safetensors=use_safetensors, weights_only=True, low_cpu_mem_usage=True,
                **kwargs, **quantization, **placement.from_pretrained_kwargs(),
            )
    except (OSError, ValueError) as exc:
        raise TrustError(f"--model={entry.name}: cannot load weights: {_explain(exc)}") from None
    except ImportError as exc:  # a quantized checkpoint whose kernels' package is missing
        raise TrustError(f"--model={entry.name}: cannot load its quantized weights: {first_line(exc)}") from None
    except SafetensorError as exc:
        problem = f"unreadable safetensors in {folder} ({first_line(exc)})"
        if weights_dir is None and entry.source in ("embedded-gguf", "gguf-file"):
            # Our own cache of the dequantized model: set it aside and dequantize again.
            discard_stored_model(Path(folder), problem)
            return load_model(entry, cache_dir, device, dtype, trust_remote_code, allow_pickle=allow_pickle)
        raise CorruptWeights(folder, f"--model={entry.name}: cannot load weights: {problem}") from None
    except Exception as exc:  # a pickle (opted in) holding more than tensors: torch refused to run it
        if "weights_only" not in str(exc):
            raise
        raise TrustError(
            f"--model={entry.name}: cannot load weights: a pickle file in {folder} holds objects other than "
            "tensors, which torch.load(weights_only=True) refuses to build; it was not loaded"
        ) from None
    if placement.device_map is None:
        model.to(device)
    else:  # split over GPUs by accelerate: inputs go where the embeddings are
        device = model.get_input_embeddings().weight.device
    model.eval()
    return LoadedModel(model, tokenizer, entry, device, dtype, time.perf_counter() - start, placement.note)


def _placement(name: str, folder: str, kwargs: dict[str, Any], dtype: torch.dtype, device: torch.device) -> Placement:
    """Where a dense checkpoint goes: unchanged (the run's device) off CUDA; on CUDA, split over
    the visible GPUs where one cannot hold it (placement.plan_placement)."""
    free = free_gpu_bytes(device)
    if not free:
        return Placement()
    size = weight_bytes(folder, kwargs, dtype)
    return Placement() if size is None else plan_placement(name, size, free, has_accelerate())


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
REMOTE_CODE_HINT = "it ships its own Python code; pass --trust-remote-code only if you trust its source"
PICKLE_HINT = (
    "its weights are pickle files only; convert them to safetensors, or pass --trust-allow-pickle to read "
    "them with torch.load(weights_only=True)"
)


def refuse_hostile(name: str, folder: Path, trust_remote_code: bool, allow_pickle: bool) -> bool | None:
    """Refuse a local model folder that would run its own code or unpickle, unless opted in.

    Returns `use_safetensors` for from_pretrained: True (safetensors only) unless the folder has
    pickle weights only and the user allowed them (None: let transformers pick). Hub ids are
    checked by transformers itself (errors mapped by _explain)."""
    if not folder.is_dir():
        return None if allow_pickle else True
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    if isinstance(config, dict) and config.get("auto_map") and not trust_remote_code:
        raise TrustError(f"--model={name}: {folder / 'config.json'} has an auto_map: {REMOTE_CODE_HINT}")
    files = [p.name for p in folder.iterdir() if p.is_file()]
    has_safetensors = any(f.endswith(".safetensors") for f in files)
    pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
    if not has_safetensors and pickles:
        if not allow_pickle:
            raise TrustError(f"--model={name}: {folder} has {', '.join(pickles[:3])}: {PICKLE_HINT}")
        return None
    return True


def _explain(exc: BaseException) -> str:
    """transformers' refusal, as the action the user can take."""
    text = first_line(exc)
    if "trust_remote_code" in str(exc):
        return REMOTE_CODE_HINT
    if "safetensors" in text and ("does not appear to have" in text or "no file named" in text):
        return f"{text} ({PICKLE_HINT})"
    return text


def pretrained_source(
    entry: ModelEntry, cache_dir: Path, trust_remote_code: bool
) -> tuple[str, dict[str, Any]]:
    """Where `from_pretrained` (or vLLM) reads this model: a folder or hub id, plus its kwargs."""
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if entry.source in ("embedded-gguf", "gguf-file"):
        return str(materialize_embedded(entry, cache_dir)), kwargs
    if entry.source == "hub":
        kwargs["revision"] = entry.revision
    return entry.location, kwargs


def materialize_embedded(entry: ModelEntry, cache_dir: Path) -> Path:
    """Dequantize a GGUF model (embedded, or a file the user named) once into
    `cache_dir/models/<name>-<hash>-tf<version>-m/` (safetensors; built, checked and quarantined
    by storage.build_folder). A file transformers cannot read is one line."""
    gguf_path = embedded_gguf_path(entry)
    digest = sha256_file(gguf_path, memo_dir=cache_dir)
    import transformers

    name = gguf_path.stem if entry.source == "gguf-file" else entry.name
    # "-m": folders carry a MANIFEST.json of file sizes (older folders are never looked up).
    target = cache_dir / "models" / f"{name}-{digest[:16]}-tf{transformers.__version__}-m"
    try:
        path, _ = build_folder(target, lambda folder: _dequantize_gguf(gguf_path, folder, digest), DEQUANTIZED)
    except (OSError, ValueError, KeyError, NotImplementedError) as exc:
        raise TrustError(f"--model={entry.name}: cannot read the GGUF file: {first_line(exc)}") from None
    return path


def discard_stored_model(target: Path, problem: str) -> None:
    """Quarantine a dequantized model found unreadable while loading (rebuilt on next use)."""
    discard_folder(target, DEQUANTIZED, problem)


def _dequantize_gguf(gguf_path: Path, folder: Path, digest: str) -> None:
    """Write the dequantized model (config, weights, tokenizer, SOURCE.json) into `folder`."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf_path.name}
    with _gguf_parsed_once():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), **kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), dtype=torch.float32, **kwargs)
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(folder)
    if model.generation_config is not None:
        model.generation_config.save_pretrained(folder)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    state = {
        name: tensor.detach().contiguous()
        for name, tensor in model.state_dict().items()
        if not (tied and name == "lm_head.weight")
    }
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(folder)
    (folder / "SOURCE.json").write_text(json.dumps({"gguf": gguf_path.name, "sha256": digest}), encoding="utf-8")


@contextmanager
def _gguf_parsed_once() -> Iterator[None]:
    """Within this block, one GGUF file is parsed once and one tensor-name map built once.

    transformers parses the whole file (its 49K-token vocabulary field by field) for the
    tokenizer, again for the config and again for the weights, and builds gguf's tensor-name
    map once per module it visits: 14 of the dequantization's 24 s here. Both are pure
    functions of their arguments (the reader memory-maps the file read-only), so they are
    memoized for the duration; gguf versions without these names are left as they are.
    """
    try:
        import gguf
    except ImportError:
        yield
        return
    original_reader = getattr(gguf, "GGUFReader", None)
    original_map = getattr(gguf, "get_tensor_name_map", None)
    if original_reader is None or original_map is None:
        yield
        return
    readers: dict[tuple[str, str], Any] = {}

    def reader(path: Any, mode: str = "r") -> Any:
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = original_reader(path, mode)
        return readers[key]

    gguf.GGUFReader = reader
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(original_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = original_reader, original_map
