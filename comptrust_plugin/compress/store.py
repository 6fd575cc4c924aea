"""Compressed models on disk, keyed by identity: built once, shared by every process.

Layout: `<cache>/artifacts/<key>/` holding config.json, model.safetensors, IDENTITY.json, a
MANIFEST.json of file sizes and a COMPLETE marker written last. Builds happen in a hidden
temporary folder renamed into place under a file lock: a second process waits and reuses; a
killed build leaves only its hidden folder, removed by the next build of the same key. A stored
artifact whose files do not match its manifest (truncated) is quarantined and rebuilt.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..storage import locked, manifest_problem, quarantine, remove_orphans, stable_hash, temp_prefix, write_manifest

LAYOUT = 2  # 2: MANIFEST.json of file sizes (folders of layout 1 are simply never looked up)


class ArtifactStore:
    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "artifacts"

    def path_for(self, identity: dict[str, Any]) -> Path:
        return self.root / stable_hash({"layout": LAYOUT, "identity": identity})[:32]

    def lookup(self, identity: dict[str, Any]) -> Path | None:
        path = self.path_for(identity)
        return path if self._valid(path, identity) else None

    def get_or_build(self, identity: dict[str, Any], build: Callable[[Path], None]) -> tuple[Path, bool]:
        """Return (path, built_here). `build(tmp_dir)` must write the model files into tmp_dir."""
        path = self.path_for(identity)
        if self._valid(path, identity):
            return path, False
        with locked(path):
            if self._valid(path, identity):
                return path, False
            if path.exists():
                problem = self.problem(path, identity)
                quarantine(path, f"stored model {path.name}: {problem}")  # never reused, kept to inspect
            self.root.mkdir(parents=True, exist_ok=True)
            remove_orphans(self.root, f"build-{path.name}")  # left by a killed build of this key
            tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(f"build-{path.name}"), dir=self.root))
            try:
                build(tmp)
                (tmp / "IDENTITY.json").write_text(
                    json.dumps(identity, indent=2, sort_keys=True), encoding="utf-8"
                )
                write_manifest(tmp)
                (tmp / "COMPLETE").write_text("ok\n", encoding="ascii")
                tmp.rename(path)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return path, True

    def discard(self, path: Path, problem: str) -> None:
        """Quarantine a stored artifact found unreadable while loading (the next build replaces it)."""
        with locked(path):
            if path.exists():
                quarantine(path, f"stored model {path.name}: {problem}")

    @classmethod
    def _valid(cls, path: Path, identity: dict[str, Any]) -> bool:
        return cls.problem(path, identity) is None

    @staticmethod
    def problem(path: Path, identity: dict[str, Any]) -> str | None:
        """Why the folder at `path` is not a complete artifact for `identity` (None: it is)."""
        if not (path / "COMPLETE").exists():
            return "incomplete (no COMPLETE marker: an interrupted build)"
        try:
            stored = json.loads((path / "IDENTITY.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "IDENTITY.json is unreadable"
        if stored != json.loads(json.dumps(identity)):
            return "IDENTITY.json names another compression"
        return manifest_problem(path)
