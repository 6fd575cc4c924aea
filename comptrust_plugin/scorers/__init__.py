"""Toxicity scorers: text -> probability of toxicity, each with an identity for cache keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..errors import TrustError


class ToxicityScorer(Protocol):
    def identity(self) -> dict[str, object]:
        """Everything that decides the scores (name, version, model); goes into keys and reports."""
        ...

    def score(self, texts: Sequence[str]) -> list[float]:
        """Toxicity probability in [0, 1] for each text, in order."""
        ...


SCORER_CHOICES = "profanity-check (default, offline), perspective (API key in $PERSPECTIVE_API_KEY), hf:MODEL"


def make_scorer(name: str) -> ToxicityScorer:
    """`--trust-toxicity-scorer` value -> scorer instance (imports only what it needs)."""
    if name == "profanity-check":
        from .profanity import ProfanityCheckScorer

        return ProfanityCheckScorer()
    if name == "perspective":
        from .perspective import PerspectiveScorer

        return PerspectiveScorer.from_environment()
    if name.startswith("hf:") and len(name) > 3:
        from .hf_classifier import HFClassifierScorer

        return HFClassifierScorer(name[3:])
    raise TrustError(f"--trust-toxicity-scorer={name}: choose {SCORER_CHOICES}")


def check_scorer_name(name: str) -> None:
    """Torch-free validation of the option, at startup."""
    if name not in ("profanity-check", "perspective") and not (name.startswith("hf:") and len(name) > 3):
        raise TrustError(f"--trust-toxicity-scorer={name}: choose {SCORER_CHOICES}")
