"""What re-scoring one dimension's DecodingTrust output files gives: a result per scoring variant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import dimensions
from ..dimensions.result import DimensionResult

# The variants in the order results are built and shown: the benchmark's own (`dt`) first.
VARIANTS = ("dt", *(v for v in dimensions.VARIANTS if v != "dt"))


@dataclass(frozen=True)
class Rescored:
    dimension: str
    files: tuple[Path, ...]  # the output files read
    results: dict[str, DimensionResult]  # variant -> result
    notes: tuple[str, ...] = ()  # what a reader should know (files skipped, coins flipped)
