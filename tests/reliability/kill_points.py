"""A pytest plugin for the *child* runs of the interruption tests: SIGKILL at a chosen point.

Loaded with `-p tests.reliability.kill_points` in a subprocess. Driven by the environment:

- COMPTRUST_KILL_TRACE=path: append every event name to `path` (one per line), kill nothing.
- COMPTRUST_KILL_AT=event:k: SIGKILL this process at the k-th occurrence of `event`, after
  writing "event:k" to $COMPTRUST_KILL_MARK (so the test knows the kill happened).
- COMPTRUST_KILL_AFTER=seconds: SIGKILL after that many seconds (a point nobody chose).

Events, each at a moment where a torn write would hurt:
- compress-block: a calibrated compression has finished its k-th block (mid-compression);
- weights-half: half of a safetensors file is on disk (mid-write of a stored model);
- weights-saved: a model's files are written, its store entry not yet complete;
- generated: the k-th answer is computed but not yet stored (mid-generation);
- scored: the k-th log-likelihood is computed but not yet stored (the held-out perplexity check);
- answers-half: inside a response-cache transaction, half its rows inserted, not committed;
- file-half: half of a report/baseline/Markdown/flips/plot/hash file is in its temp file.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

_counts: dict[str, int] = {}


def _event(name: str) -> bool:
    """Count `name`; True when this occurrence is the kill point (the caller then tears
    something and calls _die)."""
    trace = os.environ.get("COMPTRUST_KILL_TRACE")
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(name + "\n")
    _counts[name] = _counts.get(name, 0) + 1
    target = os.environ.get("COMPTRUST_KILL_AT", "")
    return target == f"{name}:{_counts[name]}"


def _die() -> None:
    mark = os.environ.get("COMPTRUST_KILL_MARK")
    if mark:
        Path(mark).write_text(os.environ.get("COMPTRUST_KILL_AT", "timer"), encoding="utf-8")
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_at(name: str) -> None:
    if _event(name):
        _die()


def pytest_configure(config: pytest.Config) -> None:
    after = os.environ.get("COMPTRUST_KILL_AFTER")
    if after:
        timer = threading.Timer(float(after), _die)
        timer.daemon = True
        timer.start()
    _patch_compressors()
    _patch_weights()
    _patch_engine()
    _patch_files()


def _patch_compressors() -> None:
    from comptrust_plugin.compress import awq, gptq, sparsegpt, wanda

    for cls in (gptq.GPTQCompressor, sparsegpt.SparseGPTCompressor, wanda.WandaCompressor, awq.AWQCompressor):
        original = cls.compress_block

        def compress_block(self: Any, step: Any, _original: Any = original) -> Any:
            result = _original(self, step)
            _kill_at("compress-block")
            return result

        cls.compress_block = compress_block


def _patch_weights() -> None:
    import transformers.modeling_utils as modeling_utils

    original_save_file = modeling_utils.safe_save_file

    def save_file(tensors: Any, filename: str, metadata: Any = None) -> None:
        if _event("weights-half"):
            original_save_file(tensors, filename, metadata=metadata)
            size = os.path.getsize(filename)
            with open(filename, "r+b") as handle:
                handle.truncate(size // 2)
            _die()
        original_save_file(tensors, filename, metadata=metadata)

    modeling_utils.safe_save_file = save_file
    original_save_pretrained = modeling_utils.PreTrainedModel.save_pretrained

    def save_pretrained(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original_save_pretrained(self, *args, **kwargs)
        _kill_at("weights-saved")
        return result

    modeling_utils.PreTrainedModel.save_pretrained = save_pretrained


def _patch_engine() -> None:
    from comptrust_plugin.engine import cache, hf

    original_generate = hf.HFBackend.generate

    def generate(self: Any, prompts: Any, settings: Any, seeds: Any, on_done: Any, needed: Any = None) -> Any:
        def done(index: int, outputs: Any) -> None:
            _kill_at("generated")
            on_done(index, outputs)

        return original_generate(self, prompts, settings, seeds, done, needed=needed)

    hf.HFBackend.generate = generate
    original_loglikelihood = hf.HFBackend.loglikelihood

    def loglikelihood(self: Any, pairs: Any, on_done: Any) -> Any:
        def done(index: int, value: Any) -> None:
            _kill_at("scored")
            on_done(index, value)

        return original_loglikelihood(self, pairs, done)

    hf.HFBackend.loglikelihood = loglikelihood
    original_put_many = cache.ResponseCache.put_many

    def put_many(self: Any, items: Any) -> None:
        items = list(items)
        if items and _event("answers-half"):
            import json

            rows = [(k, json.dumps(v), time.time()) for k, v in items[: max(1, len(items) // 2)]]
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)", rows)
            _die()  # no COMMIT
        original_put_many(self, items)

    cache.ResponseCache.put_many = put_many


def _patch_files() -> None:
    import sys
    import tempfile

    from comptrust_plugin import storage

    original = storage.atomic_write_bytes

    def atomic_write_bytes(path: Path, data: bytes) -> None:
        if _event("file-half"):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, _ = tempfile.mkstemp(prefix=storage.temp_prefix(path.name), suffix=".tmp", dir=path.parent)
            os.write(fd, data[: len(data) // 2])
            _die()
        original(path, data)

    # Every module that imported the function by name gets the wrapper too.
    for name, module in list(sys.modules.items()):
        if name.startswith("comptrust_plugin") and getattr(module, "atomic_write_bytes", None) is original:
            module.atomic_write_bytes = atomic_write_bytes
