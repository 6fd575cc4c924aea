"""Compressed models on disk, keyed by identity: built once, shared by every process.

Layout: `<cache>/artifacts/<key>/` holding config.json, model.safetensors, IDENTITY.json and
a COMPLETE marker written last. Builds happen in a temporary folder renamed into place under
a file lock: a second process waits and reuses, a killed build leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..storage import locked, stable_hash


class ArtifactStore:
    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "artifacts"

    def path_for(self, identity: dict[str, Any]) -> Path:
        return self.root / stable_hash(identity)[:32]

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
                shutil.rmtree(path)  # torn or foreign: rebuild, never reuse
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=self.root))
            try:
                build(tmp)
                (tmp / "IDENTITY.json").write_text(
                    json.dumps(identity, indent=2, sort_keys=True), encoding="utf-8"
                )
                (tmp / "COMPLETE").write_text("ok\n", encoding="ascii")
                tmp.rename(path)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return path, True

    @staticmethod
    def _valid(path: Path, identity: dict[str, Any]) -> bool:
        if not (path / "COMPLETE").exists():
            return False
        try:
            stored = json.loads((path / "IDENTITY.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return stored == json.loads(json.dumps(identity))
