"""Calibration data: sources, seeded window sampling, and the calibration identity."""

from __future__ import annotations

import hashlib
import json
import sys
import types
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from comptrust_plugin.compress.apply import compression_identity
from comptrust_plugin.compress.calibration import (
    calibration_identity,
    calibration_windows,
    load_calibration_text,
    sample_windows,
    tokenize_stream,
)
from comptrust_plugin.errors import TrustError
from comptrust_plugin.spec import parse_spec


class CharTokenizer:
    """Byte-level stand-in for a HF tokenizer: enough for the calibration code paths."""

    def __init__(self, bos: int | None = None) -> None:
        self.bos_token_id = bos

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        ids = [b % 120 + 2 for b in text.encode("utf-8")]
        if add_special_tokens and self.bos_token_id is not None:
            ids = [self.bos_token_id, *ids]
        return {"input_ids": ids}


def test_shipped_corpus_is_small_varied_text_with_a_stable_hash() -> None:
    first = load_calibration_text("comptrust-mix")
    assert 10_000 < len(first.text.encode("utf-8")) < 400_000
    assert "User:" in first.text and "Assistant:" in first.text  # a dialogue portion
    assert first.sha256 == load_calibration_text("comptrust-mix").sha256


def test_windows_are_seeded_contiguous_slices_of_the_stream() -> None:
    tokens = torch.arange(1000)
    a = sample_windows(tokens, 6, 32, seed=3)
    assert a.shape == (6, 32)
    assert torch.equal(a, sample_windows(tokens, 6, 32, seed=3))
    assert not torch.equal(a, sample_windows(tokens, 6, 32, seed=4))
    assert torch.equal(a[:, 1:] - a[:, :-1], torch.ones(6, 31, dtype=torch.long))


def test_windows_start_with_bos_when_the_tokenizer_always_adds_it() -> None:
    spec = replace(parse_spec("wanda-50-ns4"), seqlen=16)
    with_bos = calibration_windows(spec, CharTokenizer(bos=1))
    assert with_bos.shape == (4, 16) and bool((with_bos[:, 0] == 1).all())
    without = calibration_windows(spec, CharTokenizer())
    assert not bool((without[:, 0] == 1).any())


def test_text_shorter_than_a_window_is_a_clear_error() -> None:
    with pytest.raises(TrustError, match="fewer than one"):
        sample_windows(torch.arange(10), 2, 64, seed=0)


def test_local_txt_and_jsonl_sources(tmp_path: Path) -> None:
    txt = tmp_path / "mine.txt"
    txt.write_text("alpha beta\n\ngamma", encoding="utf-8")
    assert load_calibration_text(str(txt)).text == "alpha beta\n\ngamma"
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "one"}) + "\n\n" + json.dumps({"text": "two"}) + "\n", "utf-8")
    assert load_calibration_text(str(rows)).text == "one\n\ntwo"


def test_bad_jsonl_row_names_its_line(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"body": "x"}) + "\n", "utf-8")
    with pytest.raises(TrustError, match="line 2"):
        load_calibration_text(str(rows))
    with pytest.raises(TrustError, match="no such file"):
        load_calibration_text(str(tmp_path / "missing.txt"))


@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
def test_badly_encoded_cal_file_is_a_one_line_error_naming_it(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"latin1{suffix}"
    text = "caf\u00e9 au lait" if suffix == ".txt" else json.dumps({"text": "caf\u00e9"}, ensure_ascii=False)
    path.write_bytes(text.encode("latin-1") + b"\n")
    spec = replace(parse_spec("gptq-4"), calibration=str(path))
    for read in (lambda: load_calibration_text(str(path)), lambda: calibration_identity(spec)):
        with pytest.raises(TrustError) as info:
            read()
        message = str(info.value)
        assert "\n" not in message and str(path) in message and "UTF-8" in message


def test_jsonl_cal_file_that_is_not_json_names_file_and_line(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "ok"}) + "\n{\"text\": \n", "utf-8")
    with pytest.raises(TrustError, match=r"rows\.jsonl:2: not valid JSON"):
        load_calibration_text(str(rows))


def test_local_file_identity_is_the_hash_of_its_contents(tmp_path: Path) -> None:
    """Reading through data/files.py keeps the identity: sha256 of the text as read (for a file
    with "\n" line ends, of its bytes); a JSONL source hashes its joined "text" fields."""
    txt = tmp_path / "mine.txt"
    txt.write_bytes("line one\n\nline two \u2028 still two\n".encode())
    assert load_calibration_text(str(txt)).sha256 == hashlib.sha256(txt.read_bytes()).hexdigest()
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "a\u2028b"}, ensure_ascii=False) + "\r\n" + json.dumps({"text": "c"}), "utf-8")
    assert load_calibration_text(str(rows)).sha256 == hashlib.sha256("a\u2028b\n\nc".encode()).hexdigest()


def _fake_datasets(monkeypatch: pytest.MonkeyPatch, load: object) -> None:
    module = types.ModuleType("datasets")
    module.load_dataset = load  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", module)


def test_unreachable_dataset_is_a_one_line_trust_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(name: str, config: str | None) -> None:
        raise ConnectionError("Couldn't reach 'nope/ds' on the Hub (LocalEntryNotFoundError)\ntraceback...")

    _fake_datasets(monkeypatch, offline)
    with pytest.raises(TrustError) as info:
        load_calibration_text("nope/ds")
    assert "\n" not in str(info.value) and "nope/ds" in str(info.value)


def test_dataset_text_column_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    class Feature:
        dtype = "string"

    class Split:
        features = {"text": Feature()}

        def __getitem__(self, column: str) -> list[str]:
            return ["first row", "", "second row"]

    calls: list[tuple[str, str | None]] = []

    def load(name: str, config: str | None) -> dict[str, Split]:
        calls.append((name, config))
        return {"train": Split()}

    _fake_datasets(monkeypatch, load)
    assert load_calibration_text("org/data:en").text == "first row\n\nsecond row"
    assert calls == [("org/data", "en")]


def test_calibration_identity_changes_with_every_input(tmp_path: Path) -> None:
    base = parse_spec("gptq-4")
    reference = calibration_identity(base)
    assert reference["sha256"] == load_calibration_text("comptrust-mix").sha256
    variants = [replace(base, seed=1), replace(base, n_samples=64), replace(base, seqlen=256)]
    own = tmp_path / "own.txt"
    own.write_text("some text", encoding="utf-8")
    variants.append(replace(base, calibration=str(own)))
    identities = [calibration_identity(v) for v in variants]
    own.write_text("some other text", encoding="utf-8")  # same name, new content
    identities.append(calibration_identity(replace(base, calibration=str(own))))
    all_ids = [json.dumps(i, sort_keys=True) for i in [reference, *identities]]
    assert len(set(all_ids)) == len(all_ids)


def test_compression_identity_carries_calibration_only_for_calibrated_methods() -> None:
    assert compression_identity(parse_spec("mag-50"))["calibration"] is None
    for text in ("wanda-50", "sparsegpt-2:4", "gptq-4", "awq-4"):
        ident = compression_identity(parse_spec(text))
        assert ident["calibration"] == calibration_identity(parse_spec(text))


def test_stream_tokenization_covers_the_whole_text() -> None:
    text = "para one\n\npara two\n\nthree"
    assert tokenize_stream(text, CharTokenizer()).tolist() == CharTokenizer()(text)["input_ids"]
