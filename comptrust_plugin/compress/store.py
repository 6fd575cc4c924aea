"""Compressed models on disk, keyed by identity: each built once (storage.build_folder), shared by every process.

Layout: `<cache>/artifacts/<key>/` holding config.json, the weights (a quantized config packed
in compressed-tensors' format where it can express the grid, see export.save_weights; else dense
safetensors), grids.safetensors (a quantized config's grids: what exporting it needs),
IDENTITY.json, a MANIFEST.json of file sizes and a COMPLETE marker written last; `<key>` hashes
the identity.
Builds happen in a hidden temporary folder (`.build-<key>.<pid>.*`) renamed into place under a
file lock: a second process waits and reuses; a killed build leaves only its hidden folder,
removed by the next build of the same key. A stored artifact whose files do not match its
manifest (truncated) or whose IDENTITY.json does not name it is quarantined and rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import CorruptWeights
from ..storage import build_folder, discard_folder, folder_problem, stable_hash
from .grid import Grid

# 2: MANIFEST.json of file sizes; 3: grids.safetensors (folders of older layouts are never looked up)
LAYOUT = 3
GRIDS = "grids.safetensors"
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


def save_grids(folder: Path, grids: Mapping[str, Grid]) -> None:
    """A quantized config's grids beside its weights: `<linear>.scale` (float32) and
    `<linear>.zero` (uint8), bits and group size in the metadata. Nothing for other methods."""
    if not grids:
        return
    from safetensors.torch import save_file

    first = next(iter(grids.values()))
    tensors: dict[str, torch.Tensor] = {}
    for name, grid in grids.items():
        tensors[f"{name}.scale"] = grid.scale.float().contiguous().cpu()
        tensors[f"{name}.zero"] = grid.zero.to(torch.uint8).contiguous().cpu()
    save_file(tensors, folder / GRIDS, metadata={"bits": str(first.bits), "group_size": str(first.group_size)})


def load_grids(folder: Path) -> dict[str, Grid]:
    """The grids `save_grids` wrote ({} when the folder has none)."""
    path = folder / GRIDS
    if not path.exists():
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            bits, group_size = int(meta["bits"]), int(meta["group_size"])
            names = sorted({key.rsplit(".", 1)[0] for key in handle.keys()})
            return {
                name: Grid(bits, group_size, handle.get_tensor(f"{name}.scale"),
                           handle.get_tensor(f"{name}.zero").float())
                for name in names
            }
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CorruptWeights(folder, f"{path}: unreadable grids ({type(exc).__name__}: {exc})") from None
