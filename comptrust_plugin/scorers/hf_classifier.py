"""A local or hub transformers text classifier as toxicity scorer (`hf:PATH_OR_ID`).

The toxicity probability is the score of the label whose name says toxic/offensive/hate
(or LABEL_1 for binary heads). Loaded from safetensors only, no remote code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import TrustError

_TOXIC_WORDS = ("toxic", "offensive", "hate", "abusive", "insult")


class HFClassifierScorer:
    def __init__(self, model: str) -> None:
        self.model = model
        self._pipeline: Any = None

    def identity(self) -> dict[str, object]:
        path = Path(self.model)
        if path.is_dir():
            from ..models.identity import local_dir_hash

            return {"scorer": "hf-classifier", "path": str(path.resolve()), "sha256": local_dir_hash(path, None)}
        return {"scorer": "hf-classifier", "id": self.model}

    def _load(self) -> Any:
        if self._pipeline is None:
            from transformers import pipeline

            try:
                self._pipeline = pipeline(
                    "text-classification", model=self.model, top_k=None, trust_remote_code=False,
                    model_kwargs={"use_safetensors": True},
                )
            except (OSError, ValueError) as exc:
                raise TrustError(f"--trust-toxicity-scorer=hf:{self.model}: cannot load ({exc})") from None
        return self._pipeline

    def score(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        results = self._load()(list(texts), truncation=True)
        return [_toxic_probability(labels) for labels in results]


def _toxic_probability(labels: list[dict[str, Any]]) -> float:
    for item in labels:
        name = str(item["label"]).lower()
        if any(word in name for word in _TOXIC_WORDS) and not name.startswith(("non", "not")):
            return float(item["score"])
    for item in labels:
        if str(item["label"]).upper() == "LABEL_1":
            return float(item["score"])
    raise TrustError(f"classifier labels {[i['label'] for i in labels]} name no toxic class")
