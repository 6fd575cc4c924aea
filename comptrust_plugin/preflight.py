"""Checks that need no model run: every folder, file, package and device the options name, before the first test.

A mistake found here costs the user a second, not the dense answers of every dimension: each is
one TrustError naming the option as typed (`--trust-compress=hub:DIR: ...`), which the plugin
turns into a usage error (exit 4) before any test runs. What only a load can tell (a hub id that
does not exist, a corrupt weight file) is still found at load, once.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from .errors import TrustError
from .models.registry import (
    INSTALL_HINTS,
    ModelEntry,
    embedded_package_dir,
    quantization_method,
    require_quantization_packages,
    resolve_model,
)
from .options import TrustOptions

_WEIGHTS = ("*.safetensors", "*.safetensors.index.json")
_PICKLE_WEIGHTS = ("*.bin", "*.bin.index.json", "*.pt")
_TOKENIZER = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json", "spiece.model")


def preflight(options: TrustOptions) -> None:
    """Raise TrustError for the first thing the options name that cannot work."""
    model_entry(options.model, "--trust-model", options.allow_pickle)
    for spec in options.specs:
        if spec.method == "hub" and spec.hub_repo is not None:
            target = spec.hub_repo + (f"@{spec.hub_revision}" if spec.hub_revision else "")
            model_entry(target, f"--trust-compress={spec.canonical}", options.allow_pickle, tokenizer=False)
    check_device(options.device)
    check_folder("--trust-cache-dir", options.cache_dir)
    for flag, path in (
        ("--trust-report", options.report), ("--trust-markdown", options.markdown),
        ("--trust-plot", options.plot), ("--trust-flips", options.flips), ("--trust-baseline", options.baseline),
        ("--trust-csv", options.csv), ("--trust-answers", options.answers),
    ):
        if path is not None:
            check_output(flag, path)
    if options.answers_prompts and options.answers is None:
        raise TrustError("--trust-answers-prompts needs --trust-answers=PATH (the file the prompts go in)")
    if options.csv is not None:
        from .results_csv import check as check_sheet

        check_sheet(options.csv)
    if options.lm_eval is not None:
        check_folder("--trust-lm-eval", options.lm_eval)
    if options.export is not None:
        check_folder("--trust-export", options.export)
        from .compress.export import export_package, not_exportable

        for spec in options.specs:
            refusal = not_exportable(spec)
            if refusal:
                raise TrustError(f"--trust-export={options.export}: {refusal}")
        for spec in options.specs:
            package = export_package(spec)
            if package is not None and importlib.util.find_spec(package) is None:
                raise TrustError(f"--trust-export={options.export}: writing {spec.canonical} needs {package}; "
                                 f"run: {INSTALL_HINTS[package]}")
    if options.plot is not None and options.plot.suffix.lower() != ".png":
        raise TrustError(f"--trust-plot={options.plot}: the radar chart is a PNG image; name the file *.png")


def model_entry(name: str, flag: str, allow_pickle: bool, tokenizer: bool = True) -> ModelEntry:
    """The entry for a model name, with its package installed or its folder holding a model."""
    try:
        entry = resolve_model(name)
    except TrustError as exc:
        raise TrustError(str(exc).replace("--model=", f"{flag}=", 1)) from None
    if entry.source == "embedded-gguf" and entry.gguf_package:
        embedded_package_dir(entry, flag)
    if entry.source == "local":
        check_model_folder(flag, Path(entry.location), allow_pickle, tokenizer)
        where = flag if "=" in flag else f"{flag}={name}"  # a hub: spec's flag names its value already
        require_quantization_packages(where, quantization_method(Path(entry.location)))
        check_packed_layout(where, Path(entry.location))
    return entry


def check_packed_layout(where: str, folder: Path) -> None:
    """A GPTQ or AWQ folder in a layout packed_int cannot read: one line before the first test."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    quantization = config.get("quantization_config") if isinstance(config, dict) else None
    if isinstance(quantization, dict) and quantization.get("quant_method") in ("gptq", "awq"):
        from .models.packed_int import packed_format  # torch: only for such a folder

        packed_format(where, quantization)


def check_model_folder(flag: str, folder: Path, allow_pickle: bool, tokenizer: bool) -> None:
    """A local model folder: a config, weights (safetensors unless pickle is allowed), a tokenizer."""
    where = f"{flag}={folder}" if "=" not in flag else flag
    if not (folder / "config.json").is_file():
        raise TrustError(f"{where}: not a model folder (no config.json in {folder})")
    patterns = _WEIGHTS + (_PICKLE_WEIGHTS if allow_pickle else ())
    if not any(next(folder.glob(pattern), None) for pattern in patterns):
        pickled = any(next(folder.glob(pattern), None) for pattern in _PICKLE_WEIGHTS)
        hint = "; its weights are pickle files: add --trust-allow-pickle to read them" if pickled else ""
        raise TrustError(f"{where}: no safetensors weights in {folder}{hint}")
    if tokenizer and not any((folder / name).is_file() for name in _TOKENIZER):
        raise TrustError(f"{where}: no tokenizer files in {folder} (tokenizer.json or tokenizer_config.json)")


def check_device(device: str) -> None:
    """A device the machine has: `cuda`/`cuda:N` need CUDA and that many GPUs, `mps` Apple's backend."""
    if device in ("auto", "cpu"):
        return
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrustError(f"--trust-device={device}: this machine has no CUDA GPU torch can use; use cpu or auto")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise TrustError(
                f"--trust-device={device}: only {torch.cuda.device_count()} GPU(s) visible (cuda:0..); "
                "check CUDA_VISIBLE_DEVICES"
            )
    elif device == "mps" and not torch.backends.mps.is_available():
        raise TrustError("--trust-device=mps: Apple's MPS backend is not available here; use cpu or auto")


def check_folder(flag: str, path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise TrustError(f"{flag}={path}: a file is in the way; name a folder")


def check_output(flag: str, path: Path) -> None:
    """A file the run will write (or read, for a baseline): not a folder, its parent not a file."""
    if path.is_dir():
        raise TrustError(f"{flag}={path}: is a folder; name a file")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise TrustError(f"{flag}={path}: {parent} is a file, so the folder cannot be made")
