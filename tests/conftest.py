"""Shared fixtures for comptrust's own tests: a persistent model cache and tiny local models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .scripted_models import build_random_model, build_scripted_model

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def model_cache_dir() -> Path:
    """Where the embedded model is dequantized once (persists across test sessions)."""
    path = Path(os.environ.get("COMPTRUST_TEST_CACHE", "/tmp/comptrust-test-cache")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def tokenizer(model_cache_dir: Path):
    """SmolLM2's real tokenizer (from the embedded model) for the tiny test models."""
    from comptrust_plugin.models.loading import load_tokenizer
    from comptrust_plugin.models.registry import resolve_model

    return load_tokenizer(resolve_model("smollm2-135m"), model_cache_dir)


@pytest.fixture(scope="session")
def says_wrong_model(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    """A local model directory whose greedy answer to every prompt is "wrong"."""
    return build_scripted_model(tmp_path_factory.mktemp("says-wrong"), tokenizer, "wrong")


@pytest.fixture(scope="session")
def says_not_wrong_model(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    """A local model directory whose greedy answer to every prompt is "not wrong"."""
    return build_scripted_model(tmp_path_factory.mktemp("says-not-wrong"), tokenizer, "not wrong")


@pytest.fixture(scope="session")
def random_model(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    """A tiny randomly initialised llama (2 layers, hidden 64) with the real tokenizer."""
    return build_random_model(tmp_path_factory.mktemp("random-llama"), tokenizer)
