"""Compressed models on disk, keyed by identity: each built once (storage.build_folder), shared by every process.

Layout: `<cache>/artifacts/<key>/` holding config.json, model.safetensors, IDENTITY.json, a
MANIFEST.json of file sizes and a COMPLETE marker written last; `<key>` hashes the identity.
Builds happen in a hidden temporary folder (`.build-<key>.<pid>.*`) renamed into place under a
file lock: a second process waits and reuses; a killed build leaves only its hidden folder,
removed by the next build of the same key. A stored artifact whose files do not match its
manifest (truncated) or whose IDENTITY.json does not name it is quarantined and rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..storage import build_folder, discard_folder, folder_problem, stable_hash

LAYOUT = 2  # 2: MANIFEST.json of file sizes (folders of layout 1 are simply never looked up)
WHAT = "stored model"  # how warnings about an artifact name it


class ArtifactStore:
    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "artifacts"

    def path_for(self, identity: dict[str, Any]) -> Path:
        return self.root / stable_hash({"layout": LAYOUT, "identity": identity})[:32]

    def lookup(self, identity: dict[str, Any]) -> Path | None:
        path = self.path_for(identity)
        return path if self.problem(path, identity) is None else None

    def get_or_build(self, identity: dict[str, Any], build: Callable[[Path], None]) -> tuple[Path, bool]:
        """Return (path, built_here). `build(tmp_dir)` must write the model files into tmp_dir."""
        path = self.path_for(identity)
        return build_folder(path, build, WHAT, identity=identity, temp_name=f"build-{path.name}")

    def discard(self, path: Path, problem: str) -> None:
        """Quarantine a stored artifact found unreadable while loading (the next build replaces it)."""
        discard_folder(path, WHAT, problem)

    @staticmethod
    def problem(path: Path, identity: dict[str, Any]) -> str | None:
        """Why the folder at `path` is not a complete artifact for `identity` (None: it is)."""
        return folder_problem(path, identity)
