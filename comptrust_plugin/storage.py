"""Crash-safe files: atomic writes (temp, fsync, rename) and memoised content hashes.

Killing a run at any moment leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload: Any) -> None:
    text = json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def stable_hash(payload: Any) -> str:
    """sha256 of a JSON-serialisable value in canonical form (sorted keys)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: Path, memo_dir: Path | None = None) -> str:
    """Content hash of a file; memoised by (path, size, mtime) in `memo_dir` when given.

    The memo is a speed-up only: a changed size or mtime recomputes the hash.
    """
    stat = path.stat()
    memo_key = stable_hash([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    memo_file = memo_dir / "file-hashes" / f"{memo_key}.txt" if memo_dir else None
    if memo_file is not None and memo_file.exists():
        cached = memo_file.read_text(encoding="ascii").strip()
        if len(cached) == 64:
            return cached
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    if memo_file is not None:
        atomic_write_bytes(memo_file, value.encode("ascii"))
    return value


def locked(path: Path) -> FileLock:
    """An inter-process lock next to `path` (parallel workers wait instead of rebuilding)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock")
