"""Chat formats: templates that reject a system role get it folded in, --trust-chat-format overrides."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from comptrust_plugin.dimensions import machine_ethics
from comptrust_plugin.errors import TrustError
from comptrust_plugin.models.chat import ChatFormat, Message, fold_system, probe_template
from comptrust_plugin.options import TrustOptions, read_options
from comptrust_plugin.session import TrustSession

from .scripted_models import build_scripted_model
from .test_options import _raw

# Gemma-2's template in short: a system turn raises, turns must alternate user/model.
REJECTS_SYSTEM = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
ALWAYS_BROKEN = "{{ raise_exception('this template is broken') }}"
# Takes a system turn and a user turn, but raises on an assistant turn (few-shot prompts).
NO_ASSISTANT = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{{ raise_exception('no assistant turns here') }}{% endif %}"
    "{{ message['role'] + ': ' + message['content'] + '\n' }}{% endfor %}"
)
CONVERSATION = (Message("system", "Be kind."), Message("user", "Is lying wrong?"))
# SmolLM2's own template output, pinned: prompts (and so cache keys) of templates that take a
# system role must not change.
SMOLLM2_RENDERED = (
    "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nIs lying wrong?<|im_end|>\n<|im_start|>assistant\n"
)


def _with_template(tokenizer, template: str | None):
    changed = copy.deepcopy(tokenizer)
    changed.chat_template = template
    return changed


def _apply(tokenizer):
    return lambda messages: tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@pytest.fixture(scope="module")
def gemma_style_model(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    """A scripted model (always says "wrong") whose chat template rejects a system role."""
    return build_scripted_model(
        tmp_path_factory.mktemp("rejects-system"), _with_template(tokenizer, REJECTS_SYSTEM), "wrong"
    )


def _model_with(tmp_path: Path, tokenizer, template: str | None) -> Path:
    return build_scripted_model(tmp_path / "model", _with_template(tokenizer, template), "wrong")


def _session(tmp_path: Path, model: Path | str, **options) -> TrustSession:
    return TrustSession(TrustOptions(model=str(model), cache_dir=tmp_path / "cache", **options))


# ----------------------------------------------------------------------------- pure folding
def test_fold_puts_system_text_a_blank_line_before_the_first_user_turn() -> None:
    messages = (Message("system", "S"), Message("user", "Q1"), Message("assistant", "A1"), Message("user", "Q2"))
    assert fold_system(messages) == (Message("user", "S\n\nQ1"), Message("assistant", "A1"), Message("user", "Q2"))
    assert fold_system(messages[1:]) == messages[1:]


def test_the_folded_format_has_its_own_name_and_a_plain_template_keeps_its_own() -> None:
    assert ChatFormat("template").name == "template"
    assert ChatFormat("template", fold_system=True).name == "template+fold-system"
    assert ChatFormat("vicuna").name == "vicuna"


# ------------------------------------------------------------------ probing real templates
def test_a_template_that_rejects_the_system_role_is_folded(tokenizer) -> None:
    gemma = _with_template(tokenizer, REJECTS_SYSTEM)
    chat = probe_template(_apply(gemma), "gemma-style")
    assert chat == ChatFormat("template", fold_system=True)
    rendered = chat.render(CONVERSATION, _apply(gemma))
    assert "<start_of_turn>user\nBe kind.\n\nIs lying wrong?<end_of_turn>" in rendered
    assert "system" not in rendered


def test_a_template_that_takes_a_system_role_renders_exactly_as_before(tokenizer) -> None:
    chat = probe_template(_apply(tokenizer), "smollm2-135m")
    assert chat == ChatFormat("template") and not chat.fold_system
    assert chat.render(CONVERSATION, _apply(tokenizer)) == SMOLLM2_RENDERED


def test_a_template_broken_for_every_prompt_is_one_trust_error(tokenizer) -> None:
    with pytest.raises(TrustError, match="this template is broken") as caught:
        probe_template(_apply(_with_template(tokenizer, ALWAYS_BROKEN)), "broken")
    assert "\n" not in str(caught.value) and "--trust-chat-format=plain" in str(caught.value)


# ----------------------------------------------------------------- through the run's handles
def test_the_run_folds_names_the_fold_in_the_identity_and_says_so_per_dimension(
    tmp_path: Path, gemma_style_model: Path
) -> None:
    session = _session(tmp_path, gemma_style_model, samples=2)
    handle = session.handle()
    assert handle.chat_format.fold_system
    assert handle.engine.identity["chat_format"] == "template+fold-system"
    assert session.handles.model_identity["chat_format"] == "template+fold-system"
    assert "<start_of_turn>user\nBe kind.\n\nIs lying wrong?" in handle.engine.render(CONVERSATION)
    session.evaluate(machine_ethics, handle)
    folded = [e for e in session.events if "folded" in e]
    assert folded == [
        "machine_ethics: the chat template rejects a system role; system text folded into the first user turn"
    ]


def test_the_embedded_model_keeps_its_format_identity_and_prompts(model_cache_dir: Path) -> None:
    session = TrustSession(TrustOptions(cache_dir=model_cache_dir))
    handle = session.handle()
    assert handle.chat_format == ChatFormat("template")
    assert handle.engine.identity["chat_format"] == "template"
    assert session.handles.model_identity["chat_format"] == "template"
    assert handle.engine.render(CONVERSATION) == SMOLLM2_RENDERED


@pytest.mark.parametrize(
    ("asked", "expected"),
    [("plain", "Be kind.\n\nIs lying wrong?\nAnswer:"), ("vicuna", "Be kind. USER: Is lying wrong? ASSISTANT:")],
)
def test_the_option_overrides_the_models_own_template(
    tmp_path: Path, gemma_style_model: Path, asked: str, expected: str
) -> None:
    session = _session(tmp_path, gemma_style_model, chat_format=asked)
    handle = session.handle()
    assert handle.chat_format == ChatFormat(asked)  # type: ignore[arg-type]
    assert handle.engine.identity["chat_format"] == asked
    assert handle.engine.render(CONVERSATION) == expected


def test_forcing_the_template_layout_without_a_template_is_one_line(tmp_path: Path, tokenizer) -> None:
    model = _model_with(tmp_path, tokenizer, None)
    assert _session(tmp_path, model).entry.chat_format.kind == "plain"  # auto: no template, plain text
    with pytest.raises(TrustError, match="--trust-chat-format=template: the tokenizer of .* has no chat template"):
        _session(tmp_path, model, chat_format="template").handle()


def test_a_broken_template_fails_the_handle_in_one_line(tmp_path: Path, tokenizer) -> None:
    session = _session(tmp_path, _model_with(tmp_path, tokenizer, ALWAYS_BROKEN))
    with pytest.raises(TrustError, match="its chat template fails .*this template is broken") as caught:
        session.handle()
    assert "\n" not in str(caught.value)


def test_a_template_refusing_one_conversation_fails_that_render_in_one_line(tmp_path: Path, tokenizer) -> None:
    handle = _session(tmp_path, _model_with(tmp_path, tokenizer, NO_ASSISTANT)).handle()
    assert not handle.chat_format.fold_system  # it takes the system role
    few_shot = (Message("user", "Q1"), Message("assistant", "A1"), Message("user", "Q2"))
    with pytest.raises(TrustError, match="no assistant turns here") as caught:
        handle.engine.render(few_shot)
    assert "\n" not in str(caught.value)


# ----------------------------------------------------------------------------- the option
def test_the_option_reads_and_defaults_to_auto(tmp_path: Path, gemma_style_model: Path) -> None:
    assert read_options(_raw(trust_cache_dir=str(tmp_path)).get).chat_format == "auto"
    options = read_options(_raw(trust_cache_dir=str(tmp_path), trust_chat_format="llama2").get)
    assert options.chat_format == "llama2"
    options = read_options(_raw(trust_model=str(gemma_style_model), trust_chat_format="plain").get)
    entry = options.validate()
    assert entry.chat_format == ChatFormat("plain") and not entry.is_chat


def test_a_bad_chat_format_is_one_line(tmp_path: Path) -> None:
    options = read_options(_raw(trust_cache_dir=str(tmp_path), trust_chat_format="chatml").get)
    with pytest.raises(TrustError, match="--trust-chat-format=chatml: choose one of auto, template, plain") as caught:
        options.validate()
    assert "\n" not in str(caught.value)
