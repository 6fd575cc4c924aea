"""Calibration data for the calibrated methods: load a text source, sample seeded token windows.

Sources (`cal=NAME` in a spec):
- `comptrust-mix` (default): the corpus shipped with comptrust, fixtures/calibration/comptrust-mix.txt,
  our own varied English prose (explanations, instructions, dialogue, stories, facts).
- a local `.txt` file (used as is) or `.jsonl` file (the "text" field of every row, joined by
  blank lines), read as UTF-8 by data/files.py's readers (an unreadable, badly encoded or
  malformed file is a one-line TrustError naming the file and line).
- anything else is a `datasets` dataset name, `NAME` or `NAME:CONFIG`, read from its "train"
  split (or its first split) and its "text" column (or first string column). `datasets` is
  imported only then; offline or unknown names fail with a one-line TrustError.

The references sample random windows of a fixed length from a token stream; so do we, with a
seeded generator so the same spec gives the same windows. The calibration identity (content
hash, name, samples, length, seed) is part of every compressed artifact's identity.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.files import fixtures_dir, json_lines, read_text
from ..errors import TrustError
from ..spec import DEFAULT_CALIBRATION, CompressionSpec
from ..storage import user_path

# A dataset can be huge; the references use well under a million tokens of it.
MAX_DATASET_CHARS = 4_000_000


@dataclass(frozen=True)
class CalibrationText:
    name: str
    text: str
    sha256: str


def _from_text(name: str, text: str) -> CalibrationText:
    if not text.strip():
        raise TrustError(f"cal={name}: the calibration text is empty")
    return CalibrationText(name, text, hashlib.sha256(text.encode("utf-8")).hexdigest())


def _read_jsonl(path: Path, name: str) -> str:
    parts: list[str] = []
    for number, row in json_lines(path, "calibration file"):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise TrustError(f"cal={name}: line {number} has no string field \"text\"")
        parts.append(row["text"])
    return "\n\n".join(parts)


def _read_dataset(name: str) -> str:
    dataset_name, _, config = name.partition(":")
    try:
        import datasets
    except ImportError:
        raise TrustError(f"cal={name}: not a shipped corpus or local file, and the `datasets` "
                         "package is not installed to load it as a dataset") from None
    try:
        loaded = datasets.load_dataset(dataset_name, config or None)
        split = loaded["train"] if "train" in loaded else loaded[next(iter(loaded))]
    except Exception as exc:  # datasets raises many types (connection, not found, config)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrustError(f"cal={name}: cannot load it as a dataset ({first[:200]}); use "
                         f"cal={DEFAULT_CALIBRATION} or a local .txt/.jsonl file") from None
    columns = [c for c, feature in split.features.items() if getattr(feature, "dtype", None) == "string"]
    column = "text" if "text" in columns else (columns[0] if columns else None)
    if column is None:
        raise TrustError(f"cal={name}: the dataset has no text column")
    parts: list[str] = []
    size = 0
    for value in split[column]:
        if value:
            parts.append(value)
            size += len(value)
            if size >= MAX_DATASET_CHARS:
                break
    return "\n\n".join(parts)


def load_calibration_text(name: str) -> CalibrationText:
    """The text behind `cal=NAME` (see module docstring); TrustError if it cannot be read."""
    if name == DEFAULT_CALIBRATION:
        path = fixtures_dir() / "calibration" / f"{DEFAULT_CALIBRATION}.txt"
        if not path.is_file():
            raise TrustError(f"the shipped calibration corpus {path} is missing; reinstall comptrust")
        return _from_text(name, read_text(path, "calibration corpus"))
    path = user_path(name)
    if path.suffix in (".txt", ".jsonl"):
        if not path.is_file():
            raise TrustError(f"cal={name}: no such file")
        text = _read_jsonl(path, name) if path.suffix == ".jsonl" else read_text(path, "calibration file")
        return _from_text(name, text)
    return _from_text(name, _read_dataset(name))


def calibration_identity(spec: CompressionSpec) -> dict[str, Any]:
    """Everything about the calibration data that decides the compressed weights."""
    source = load_calibration_text(spec.calibration)
    return {
        "name": source.name, "sha256": source.sha256,
        "n_samples": spec.cal_samples, "seqlen": spec.seqlen, "seed": spec.seed,
    }


def tokenize_stream(text: str, tokenizer: Any) -> torch.Tensor:
    """The whole text as one token stream (1-D long tensor), without special tokens."""
    # Paragraph by paragraph: tokenizers warn about (and some truncate) one very long input.
    ids: list[int] = []
    paragraphs = text.split("\n\n")
    for index, paragraph in enumerate(paragraphs):
        piece = paragraph if index == len(paragraphs) - 1 else paragraph + "\n\n"
        ids.extend(tokenizer(piece, add_special_tokens=False)["input_ids"])
    return torch.tensor(ids, dtype=torch.long)


def _leading_bos(tokenizer: Any) -> int | None:
    """The BOS id if the tokenizer itself starts every encoding with it (Gemma, Llama-2)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    ids = tokenizer("a")["input_ids"]
    return bos if ids and ids[0] == bos else None


def sample_windows(
    tokens: torch.Tensor, n_samples: int, seqlen: int, seed: int, bos: int | None = None
) -> torch.Tensor:
    """`n_samples` windows of `seqlen` tokens at seeded random offsets, shape (n_samples, seqlen).

    With `bos`, each window is BOS + (seqlen - 1) stream tokens: models whose tokenizer always
    adds BOS never see text without it, and calibrating on such text skews their statistics.
    """
    body = seqlen - 1 if bos is not None else seqlen
    if body < 1:
        raise TrustError(f"calibration sequence length {seqlen} is too short")
    if tokens.numel() < body:
        raise TrustError(f"the calibration text has {tokens.numel()} tokens, fewer than one "
                         f"{seqlen}-token window; use a larger cal= source")
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, tokens.numel() - body + 1, (n_samples,), generator=generator)
    windows = torch.stack([tokens[s : s + body] for s in starts.tolist()])
    if bos is not None:
        windows = torch.cat([torch.full((n_samples, 1), bos, dtype=torch.long), windows], dim=1)
    return windows


def calibration_windows(spec: CompressionSpec, tokenizer: Any) -> torch.Tensor:
    """The calibration input ids for `spec`: (spec.cal_samples, spec.seqlen), deterministic."""
    if tokenizer is None:
        raise TrustError(f"--compress={spec.canonical}: calibrated methods need the model's tokenizer")
    source = load_calibration_text(spec.calibration)
    tokens = tokenize_stream(source.text, tokenizer)
    return sample_windows(tokens, spec.cal_samples, spec.seqlen, spec.seed, _leading_bos(tokenizer))
