"""Model identity: what a cache key says about *which weights* produced an answer."""

from __future__ import annotations

from pathlib import Path

from ..errors import TrustError
from ..storage import sha256_file, stable_hash
from .registry import ModelEntry, embedded_gguf_path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def model_identity(entry: ModelEntry, cache_dir: Path) -> dict[str, object]:
    """Id + revision for hub models, content hash for embedded and local ones.

    Computed once per session by the caller; never depends on the alias spelling. The chat
    format is the effective one ("template+fold-system" where the template rejects a system
    role: the caller resolves it from the tokenizer first).
    """
    chat = entry.chat_format.name
    if entry.source in ("embedded-gguf", "gguf-file"):
        path = embedded_gguf_path(entry)
        return {
            "source": entry.source, "file": path.name,
            "sha256": sha256_file(path, memo_dir=cache_dir), "chat_format": chat,
        }
    if entry.source == "local":
        return {
            "source": "local", "path": entry.location,
            "sha256": local_dir_hash(Path(entry.location), cache_dir), "chat_format": chat,
        }
    return {
        "source": "hub", "id": entry.location,
        "revision": resolve_hub_revision(entry.location, entry.revision), "chat_format": chat,
    }


def local_dir_hash(directory: Path, cache_dir: Path | None) -> str:
    """Hash over every file of a model directory (names and contents)."""
    listing = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory)
        if any(part.startswith(".") for part in rel.parts):
            continue
        listing.append([str(rel), sha256_file(path, memo_dir=cache_dir)])
    if not listing:
        raise TrustError(f"--model={directory}: the directory is empty")
    return stable_hash(listing)


def resolve_hub_revision(repo: str, revision: str | None) -> str:
    """A commit sha for `repo@revision`: from the hub when reachable, else the local HF cache."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo, "config.json", revision=revision or "main")
    if isinstance(cached, str):
        return Path(cached).parent.name  # .../snapshots/<commit>/config.json
    try:
        from huggingface_hub import HfApi

        info = HfApi().model_info(repo, revision=revision)
    except Exception as exc:  # network down, repo gated or missing
        reason = type(exc).__name__
        raise TrustError(
            f"--model={repo}: cannot resolve its revision ({reason}); it is not in the local "
            f"Hugging Face cache and the hub is unreachable. Download it first or pass a local "
            f"directory."
        ) from None
    if not info.sha:
        raise TrustError(f"--model={repo}: the hub returned no commit for revision {revision}")
    return info.sha
