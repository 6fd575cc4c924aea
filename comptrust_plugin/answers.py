"""`--trust-answers=PATH`: every item's answers, dense and compressed, as JSON lines, streamed verdict by verdict.

One record per (dimension, config, item): the item's key and subset, the hash of the prompt each
model was given as rendered (the prompt itself with `--trust-answers-prompts`), each model's
output, parsed answer and item value, whether the item counts as right (label dimensions), the
external scorer's value (toxicity) and whether the answer is a refusal. The flips file is a view
of the same records (`flip_view`): the flipped ones, fewer fields.

Streaming: each process appends a verdict's records, sorted by key, as one block to its own hidden
part file next to PATH as the verdict is made, and keeps only the blocks' offsets. At the end
of the run the controlling process copies the blocks of every part (its own, or its xdist
workers') in (dimension, config) order into a temp file renamed over PATH: a rerun replaces the
file, and a killed run leaves the previous file whole. Parts a killed run left behind are removed
by the next run that writes the same PATH once that run's controlling process is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .dimensions.result import REFUSAL, DimensionResult, ItemOutcome
from .engine.requests import GenerationRequest
from .errors import TrustError
from .shared_cache import owner_token
from .storage import remove_orphans, temp_prefix

# The flips file's fields, in the answers record's own names (a flip is a record with fewer fields).
FLIP_FIELDS = (
    "dimension", "config", "key", "dense_answer", "compressed_answer", "dense_value", "compressed_value",
    "dense_output", "compressed_output",
)
# An external scorer's value of the output an item was judged by, from the item's value.
_SCORER_VALUE = {"toxicity": lambda value: round(1.0 - value, 12)}  # value = 1 - the highest toxicity
_COPY_CHUNK = 1 << 20


def prompt_sha256(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def _side(
    outcome: ItemOutcome | None, labels: bool, scorer: str | None, prompt: str | None
) -> dict[str, Any]:
    """One model's fields of a record (all None where the model has no outcome for the item)."""
    if outcome is None:
        return dict.fromkeys(("answer", "value", "output", "correct", "refused", "scores", "prompt_sha256"))
    value = outcome.value
    score = _SCORER_VALUE.get(scorer or "")
    return {
        "answer": outcome.answer, "value": value, "output": outcome.output,
        # label dimensions score an item 1 (right, or not fooled) or 0; None: left out of the score
        "correct": (value == 1.0) if labels and value is not None else None,
        "refused": outcome.answer == REFUSAL,
        "scores": {scorer: score(value)} if score is not None and value is not None else None,
        "prompt_sha256": prompt_sha256(prompt) if prompt is not None else None,
    }


def verdict_records(
    dimension: Any, config: str, dense: DimensionResult, compressed: DimensionResult | None,
    requests: Sequence[GenerationRequest], dense_engine: Any, compressed_engine: Any | None, with_prompts: bool,
) -> list[dict[str, Any]]:
    """One verdict's records (item_records), with the prompts each model was given: rendered again
    from the requests by each model's engine, the same text its answers were computed or cached under."""

    def rendered(engine: Any) -> dict[str, str]:
        return {r.key: engine.render(r.messages) for r in requests}

    return item_records(
        dimension.NAME, config, dense, compressed, labels=getattr(dimension, "LABEL_ANSWERS", False),
        scorer=dimension.EXTERNAL_SCORER, dense_prompts=rendered(dense_engine),
        compressed_prompts=rendered(compressed_engine) if compressed_engine is not None else None,
        with_prompts=with_prompts,
    )


def item_records(
    dimension: str, config: str, dense: DimensionResult, compressed: DimensionResult | None, *,
    labels: bool = False, scorer: str | None = None, dense_prompts: Mapping[str, str] | None = None,
    compressed_prompts: Mapping[str, str] | None = None, with_prompts: bool = False,
) -> list[dict[str, Any]]:
    """The records of one verdict, sorted by key: one per item either model answered.

    `labels`: the dimension's answers are class labels and its item values right/wrong;
    `scorer`: its external scorer (toxicity); `*_prompts`: request key -> the prompt as each model
    saw it rendered (None: not known, the hashes are None); `with_prompts`: the record carries the
    dense model's prompt, and the compressed model's too where its rendering differs."""
    before = {o.key: o for o in dense.outcomes}
    after = {o.key: o for o in compressed.outcomes} if compressed is not None else {}
    records = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        dense_prompt = dense_prompts.get(key) if dense_prompts is not None else None
        compressed_prompt = compressed_prompts.get(key) if compressed_prompts is not None and new else None
        either = old if old is not None else after[key]
        record: dict[str, Any] = {
            "dimension": dimension, "config": config, "key": key, "subset": either.subset,
            "flipped": old is not None and new is not None and old.answer != new.answer,
        }
        for side, outcome, prompt in (("dense", old, dense_prompt), ("compressed", new, compressed_prompt)):
            record.update({f"{side}_{name}": value for name, value in _side(outcome, labels, scorer, prompt).items()})
        if with_prompts:
            record["prompt"] = dense_prompt
            if compressed_prompt is not None and compressed_prompt != dense_prompt:
                record["compressed_prompt"] = compressed_prompt
        records.append(record)
    return records


def flip_view(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The flips file's lines from answers records: the flipped ones, FLIP_FIELDS only."""
    return [{name: record[name] for name in FLIP_FIELDS} for record in records if record["flipped"]]


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"


def _owner() -> int:
    """The process that assembles the file: an xdist worker's controller (its parent), else this one.
    A part carries its pid, so the next run can tell a killed run's parts from a live run's."""
    return os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()


class AnswerStream:
    """This process's share of the answers file: one block of lines per verdict, appended to a part."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.blocks: list[dict[str, Any]] = []  # {"part", "dimension", "config", "offset", "length"}
        self._part: Path | None = None
        self._size = 0

    def write(self, dimension: str, config: str, records: Iterable[dict[str, Any]]) -> None:
        """Append one verdict's records as a block (flushed to the part before this returns)."""
        data = "".join(_line(r) for r in records).encode("utf-8")
        try:
            if self._part is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.{owner_token(_owner())}.", suffix=".part",
                                            dir=self.path.parent)
                os.close(fd)
                self._part = Path(name)
            with self._part.open("ab") as part:
                part.write(data)
        except OSError as exc:
            raise TrustError(f"--trust-answers={self.path}: cannot write next to it ({exc.strerror or exc})") from None
        self.blocks.append({"part": str(self._part), "dimension": dimension, "config": config,
                            "offset": self._size, "length": len(data)})
        self._size += len(data)


def assemble(path: Path, blocks: Iterable[Mapping[str, Any]]) -> int:
    """Write the answers file at `path` from the parts' blocks in (dimension, config) order (a temp
    file renamed over it), then remove those parts and any a killed run left; returns the bytes written."""
    ordered = sorted(blocks, key=lambda b: (b["dimension"], b["config"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for block in ordered:
                written += _copy_block(Path(block["part"]), block["offset"], block["length"], out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        where = exc.filename or path
        raise TrustError(f"--trust-answers={path}: not written ({exc.strerror or exc}: {where})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for part in {block["part"] for block in ordered}:
        Path(part).unlink(missing_ok=True)
    remove_orphans(path.parent, path.name)
    return written


def _copy_block(part: Path, offset: int, length: int, out: Any) -> int:
    with part.open("rb") as source:
        source.seek(offset)
        left = length
        while left:
            chunk = source.read(min(left, _COPY_CHUNK))
            if not chunk:
                raise OSError(0, f"part ends before its block ({offset}+{length} bytes)", str(part))
            out.write(chunk)
            left -= len(chunk)
    return length
