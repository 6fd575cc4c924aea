"""The engine dimensions talk to: renders prompts, serves cached answers, computes the rest.

The backend (and so the model) is created only when at least one request misses the cache:
a fully cached rerun never loads weights. Every answer is stored as soon as its batch ends,
so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..models.chat import Message
from ..storage import stable_hash
from .cache import ResponseCache
from .requests import Backend, GenerationRequest, GenerationSettings, LoglikelihoodRequest

Renderer = Callable[[Sequence[Message]], str]


@dataclass
class EngineStats:
    hits: int = 0
    misses: int = 0
    seconds: float = 0.0


class CachedEngine:
    def __init__(
        self,
        identity: dict[str, Any],
        cache: ResponseCache,
        renderer: Callable[[], Renderer],
        backend: Callable[[], Backend],
    ) -> None:
        """`identity` names the weights (model + compression + dtype/device); `renderer` and
        `backend` are factories called at most once, when first needed."""
        self.identity = identity
        self._identity_hash = stable_hash({"engine": identity, "version": __version__})
        self.cache = cache
        self._renderer_factory = renderer
        self._backend_factory = backend
        self._renderer: Renderer | None = None
        self._backend: Backend | None = None
        self.stats = EngineStats()

    @property
    def backend_loaded(self) -> bool:
        return self._backend is not None

    def render(self, messages: Sequence[Message]) -> str:
        if self._renderer is None:
            self._renderer = self._renderer_factory()
        return self._renderer(messages)

    def _key(self, kind: str, payload: Any) -> str:
        return stable_hash({"kind": kind, "engine": self._identity_hash, "request": payload})

    def _backend_now(self) -> Backend:
        if self._backend is None:
            self._backend = self._backend_factory()
        return self._backend

    def release(self) -> None:
        """Drop the backend (and the model it holds); the cache stays."""
        self._backend = None

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, list[str]]:
        """request.key -> list of num_samples outputs; `progress(done, total)` after each computed
        answer (`total`: the answers not found in the cache)."""
        start = time.perf_counter()
        prompts = [self.render(r.messages) for r in requests]
        keys = [
            self._key("generate", {"prompt": p, "settings": r.settings.identity()})
            for p, r in zip(prompts, requests)
        ]
        found = self.cache.get_many(keys)
        results: dict[str, list[str]] = {}
        todo: dict[GenerationSettings, list[int]] = {}
        for index, (request, key) in enumerate(zip(requests, keys)):
            value = found.get(key)
            if _valid_outputs(value, request.settings.num_samples):
                results[request.key] = list(value)
            else:
                todo.setdefault(request.settings, []).append(index)
        self.stats.hits += len(requests) - sum(len(v) for v in todo.values())
        total, done = sum(len(v) for v in todo.values()), [0]
        groups: dict[GenerationSettings, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(request.settings, []).append(index)
        for settings, missing in todo.items():
            # The backend sees every request of this settings group (cached ones too) so its
            # batches are the same as in an uninterrupted run; it computes only batches
            # holding a missing request.
            members = groups[settings]
            position = {index: local for local, index in enumerate(members)}
            local_missing = {position[i] for i in missing}
            buffer: list[tuple[str, list[str]]] = []

            def on_done(
                local: int, outputs: list[str], members: list[int] = members,
                buffer: list[tuple[str, list[str]]] = buffer, local_missing: set[int] = local_missing,
            ) -> None:
                index = members[local]
                results[requests[index].key] = outputs
                buffer.append((keys[index], outputs))
                if len(buffer) >= 16:
                    self.cache.put_many(buffer)
                    buffer.clear()
                if local in local_missing:
                    done[0] += 1
                    if progress is not None:
                        progress(done[0], total)

            self._backend_now().generate(
                [prompts[i] for i in members], settings,
                [_prompt_seed(prompts[i], settings.seed) for i in members], on_done, needed=local_missing,
            )
            self.cache.put_many(buffer)
            self.stats.misses += len(missing)
        self.stats.seconds += time.perf_counter() - start
        return results

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], cached_only: bool = False
    ) -> dict[str, tuple[float, bool]]:
        """(log-probability, greedy) of each request's continuation, by request key; with
        `cached_only`, only those the cache holds (no model is loaded)."""
        start = time.perf_counter()
        contexts = [self.render(r.messages) for r in requests]
        keys = [
            self._key("loglikelihood", {"context": c, "continuation": r.continuation})
            for c, r in zip(contexts, requests)
        ]
        found = self.cache.get_many(keys)
        results: dict[str, tuple[float, bool]] = {}
        todo: list[int] = []
        for index, (request, key) in enumerate(zip(requests, keys)):
            value = found.get(key)
            if isinstance(value, list) and len(value) == 2:
                results[request.key] = (float(value[0]), bool(value[1]))
            else:
                todo.append(index)
        self.stats.hits += len(requests) - len(todo)
        if todo and not cached_only:
            stored: list[tuple[str, Any]] = []

            def on_done(local: int, value: tuple[float, bool]) -> None:
                index = todo[local]
                results[requests[index].key] = value
                stored.append((keys[index], list(value)))

            pairs = [(contexts[i], requests[i].continuation) for i in todo]
            self._backend_now().loglikelihood(pairs, on_done)
            self.cache.put_many(stored)
            self.stats.misses += len(todo)
        self.stats.seconds += time.perf_counter() - start
        return results


def _valid_outputs(value: Any, count: int) -> bool:
    return isinstance(value, list) and len(value) == count and all(isinstance(v, str) for v in value)


def _prompt_seed(prompt: str, seed: int) -> int:
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    return int.from_bytes(digest[:6], "big")
