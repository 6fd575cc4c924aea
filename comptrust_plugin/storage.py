"""Crash-safe files: atomic writes, stored folders built once under a lock, quarantine, content hashes.

Killing a run at any moment leaves either the old file or the new one, never a torn one. What a
killed process leaves behind (a hidden temp file or build folder) is never read, and is removed
by the next writer of the same target once its owner is gone (an owner on another host of a
shared cache: once its entry has been idle for days, see shared_cache.owner_gone). A stored
folder (a compressed model, a dequantized model) is made by `build_folder` alone: built in a
hidden temporary folder renamed into place under a file lock, it carries a manifest of its file
sizes and a COMPLETE marker written last, so a truncated file is caught before anything loads
it, and a bad entry is moved aside (quarantined), never deleted or used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .shared_cache import host_tag, owner_gone, owner_token, parse_owner

if TYPE_CHECKING:
    from filelock import FileLock

MANIFEST = "MANIFEST.json"
COMPLETE = "COMPLETE"  # written last into a stored folder: the build finished
IDENTITY = "IDENTITY.json"  # what a stored folder holds, where its builder names it


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
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
        if len(cached) == 64 and all(c in "0123456789abcdef" for c in cached):
            return cached  # anything else (a damaged memo) is recomputed and rewritten
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    if memo_file is not None:
        atomic_write_bytes(memo_file, value.encode("ascii"))
    return value


def user_path(text: str | Path) -> Path:
    """A path the user typed, `~` expanded where it names a home (`~nobody` stays as typed)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        return Path(text)


def locked(path: Path) -> FileLock:
    """An inter-process lock next to `path` (parallel workers wait instead of rebuilding)."""
    from filelock import FileLock  # not at import: the pytest plugin imports this module in every session

    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock")


def temp_prefix(name: str) -> str:
    """Prefix of the hidden temp files/folders this process makes for `name`: its owner (pid and
    host) in the name lets a later process tell an orphan (owner gone) from a write in progress,
    on a cache several hosts share too."""
    return f".{name}.{owner_token()}."


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _idle_seconds(entry: Path, now: float) -> float:
    """Seconds since `entry` (or, for a folder, anything directly in it) last changed."""
    try:
        times = [entry.stat().st_mtime]
        if entry.is_dir():
            times += [child.stat().st_mtime for child in entry.iterdir()]
    except OSError:
        return 0.0  # changing right now
    return now - max(times)


def remove_orphans(folder: Path, name: str) -> int:
    """Delete the hidden temp entries made for `name` (see temp_prefix) in `folder` whose owner
    is gone (left by a killed run; shared_cache.owner_gone decides). Returns how many were removed."""
    prefix = f".{name}."
    removed = 0
    if not folder.is_dir():
        return 0
    here, now = host_tag(), time.time()
    for entry in folder.iterdir():
        if not entry.name.startswith(prefix):
            continue
        owner = parse_owner(entry.name[len(prefix) :].split(".", 1)[0])
        if owner is None or not owner_gone(owner, _idle_seconds(entry, now), pid_alive, here):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def write_manifest(folder: Path) -> None:
    """Record the size of every file in `folder` (written last, before the completion marker)."""
    sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps(sizes, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def manifest_problem(folder: Path) -> str | None:
    """None when every file of the manifest is there with its recorded size; else what is wrong."""
    try:
        sizes = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{folder / MANIFEST} is missing or unreadable"
    if not isinstance(sizes, dict):
        return f"{folder / MANIFEST} is not a file-size table"
    for name, size in sizes.items():
        file = folder / name
        try:
            actual = file.stat().st_size
        except OSError:
            return f"{file} is missing"
        if actual != size:
            return f"{file} is {actual} bytes, {size} when it was written (truncated or overwritten)"
    return None


def quarantine(path: Path, problem: str) -> Path:
    """Move a bad file or folder aside (`<name>.corrupt-<time>`, kept for inspection) and say so
    in one line; the caller then rebuilds it."""
    stamp = int(time.time())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        target, counter = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}"), counter + 1
    path.rename(target)
    warnings.warn(f"comptrust: {problem}; moved it aside to {target.name} and rebuilding", stacklevel=2)
    return target


def folder_problem(folder: Path, identity: Any = None) -> str | None:
    """Why `folder` is not a complete stored folder (None: it is): no COMPLETE marker, an
    IDENTITY.json that is unreadable or names something other than `identity` (checked only
    when `identity` is given), or files that do not match the manifest."""
    if not (folder / COMPLETE).exists():
        return "incomplete (no COMPLETE marker: an interrupted build)"
    if identity is not None:
        try:
            stored = json.loads((folder / IDENTITY).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return f"{IDENTITY} is unreadable"
        if stored != json.loads(json.dumps(identity)):
            return f"{IDENTITY} names another compression"
    return manifest_problem(folder)


def build_folder(
    path: Path, build: Callable[[Path], None], what: str, identity: Any = None, temp_name: str | None = None,
) -> tuple[Path, bool]:
    """The complete stored folder at `path`, built here if needed: returns (path, built_here).

    `build(tmp)` writes the folder's files into an empty hidden temporary folder next to `path`
    (named for `temp_name`, default `path.name`, with this process's id: see temp_prefix). Then,
    in this order: IDENTITY.json (`identity`, when given), the manifest of file sizes, the
    COMPLETE marker, and one rename into place. All of it runs under a file lock beside `path`,
    so a second process waits and reuses the folder; the temporary folders of killed builds are
    removed first; a stored folder that fails `folder_problem` is quarantined (its warning
    names `what` and the problem) and rebuilt. A failed build leaves nothing behind.
    """
    if folder_problem(path, identity) is None:
        return path, False
    with locked(path):
        problem = folder_problem(path, identity)
        if problem is None:  # another process finished it while we waited
            return path, False
        if path.exists():
            quarantine(path, f"{what} {path.name}: {problem}")  # never reused, kept to inspect
        name = temp_name or path.name
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_orphans(path.parent, name)  # left by a killed build of this folder
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(name), dir=path.parent))
        try:
            build(tmp)
            if identity is not None:
                (tmp / IDENTITY).write_text(json.dumps(identity, indent=2, sort_keys=True), encoding="utf-8")
            write_manifest(tmp)
            (tmp / COMPLETE).write_text("ok\n", encoding="ascii")
            try:
                tmp.rename(path)
            except OSError:
                # A host whose lock this filesystem does not show us finished the same folder
                # first: it is equal to ours (same identity), keep it and drop ours.
                if folder_problem(path, identity) is not None:
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return path, True


def discard_folder(path: Path, what: str, problem: str) -> None:
    """Quarantine a stored folder found unreadable by its user (the next build_folder rebuilds it)."""
    with locked(path):
        if path.exists():
            quarantine(path, f"{what} {path.name}: {problem}")
