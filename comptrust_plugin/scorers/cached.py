"""External scorer values cached like model answers: keyed by (scorer identity, text), stored chunk by chunk."""

from __future__ import annotations

from collections.abc import Sequence

from ..engine.cache import ResponseCache
from ..storage import stable_hash
from . import ToxicityScorer

CHUNK = 256  # texts scored and stored at a time: an interrupted run keeps what it scored


class CachedScorer:
    """A toxicity scorer in front of the response cache: a text is scored once per scorer identity."""

    def __init__(self, scorer: ToxicityScorer, cache: ResponseCache) -> None:
        self.scorer = scorer
        self.cache = cache

    def identity(self) -> dict[str, object]:
        return self.scorer.identity()

    def scores(self, texts: Sequence[str]) -> dict[str, float]:
        """Scorer value of every text, from the cache where stored, else scored and stored."""
        identity = self.scorer.identity()
        keys = {text: stable_hash({"kind": "toxicity", "scorer": identity, "text": text}) for text in texts}
        found = self.cache.get_many(list(keys.values()))
        result = {t: float(found[k]) for t, k in keys.items() if isinstance(found.get(k), (int, float))}
        missing = [t for t in texts if t not in result]
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            values = self.scorer.score(chunk)
            self.cache.put_many([(keys[t], v) for t, v in zip(chunk, values)])
            result.update(zip(chunk, values))
        return result
