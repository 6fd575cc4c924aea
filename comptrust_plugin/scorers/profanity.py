"""Default offline toxicity scorer: alt-profanity-check's trained offensive-language classifier.

A linear model over character/word n-grams that ships inside the PyPI package, so it runs
with no network and no GPU. It scores offensive *wording* (insults, profanity) well and
veiled hostility poorly; Perspective is the option for DecodingTrust-comparable numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata

from ..errors import TrustError


class ProfanityCheckScorer:
    def __init__(self) -> None:
        try:
            from profanity_check import predict_prob
        except ImportError:
            raise TrustError(
                "the default toxicity scorer needs alt-profanity-check: pip install alt-profanity-check"
            ) from None
        self._predict = predict_prob
        self._version = metadata.version("alt-profanity-check")

    def identity(self) -> dict[str, object]:
        return {"scorer": "alt-profanity-check", "version": self._version}

    def score(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        return [float(p) for p in self._predict(list(texts))]
