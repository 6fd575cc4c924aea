"""Request and settings types shared by dimensions (pure) and backends (torch). Torch-free."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from ..models.chat import Message

# How backends turn a row's seed into samples; a sampled answer's cache key carries it, so a
# change of scheme can never serve answers drawn the old way.
SAMPLING_SCHEME = "per-row-generator/inverse-cdf/1"
# How the HF backend batches and computes (prefix passes, attention kernels, cache layout).
# In bf16 such a change can move near-tied answers, so every answer's cache key carries it:
# bump it with any change that can change a computed value.
HF_NUMERICS = "hf-numerics/4"


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 20
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    num_samples: int = 1
    stop: tuple[str, ...] = ("\n",)
    seed: int = 0  # only used when sampling

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def identity(self) -> dict[str, object]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        if self.greedy:  # seed and top_p cannot change a greedy answer
            data["seed"] = None
            data["top_p"] = None
        else:
            data["sampling"] = SAMPLING_SCHEME
        return data


@dataclass(frozen=True)
class GenerationRequest:
    key: str  # unique inside one dimension, e.g. "zero_shot/me-001"
    messages: tuple[Message, ...]
    settings: GenerationSettings


@dataclass(frozen=True)
class LoglikelihoodRequest:
    key: str
    messages: tuple[Message, ...]  # the context, rendered with the chat format
    continuation: str


def finish_text(text: str, stop: tuple[str, ...]) -> str:
    """An answer cut at its first stop string; a stop string counts only after the leading blanks
    (a chat answer often opens with a newline). Shared by every backend so they cut alike."""
    body = text.lstrip()
    lead = text[: len(text) - len(body)]
    cut = min((body.find(s) for s in stop if s in body), default=-1)
    return lead + body[:cut] if cut >= 0 else text


OnGenerated = Callable[[int, list[str]], None]
OnScored = Callable[[int, tuple[float, bool]], None]


class Backend(Protocol):
    """What every inference backend implements (HF today; vLLM is the scale path).

    Results are handed back through callbacks as soon as each batch finishes, so a killed
    run keeps everything it already computed.
    """

    def generate(
        self, prompts: Sequence[str], settings: GenerationSettings, seeds: Sequence[int],
        on_done: OnGenerated, needed: Collection[int] | None = None,
    ) -> None:
        """Answer `prompts[i]` for every i in `needed` (default: all) via `on_done(i, samples)`.

        A backend may answer more than asked (whole batches), and it must batch the same way
        whichever prompts are needed, so that a resumed run computes bit-identical answers.
        """
        ...

    def loglikelihood(
        self, pairs: Sequence[tuple[str, str]], on_done: OnScored
    ) -> None: ...
