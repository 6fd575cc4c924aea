"""Render chat messages into the prompt text a given model expects.

Torch-free: dimensions build `Message` tuples, the engine renders them with the model's
`ChatFormat`. The rendered text (not the messages) goes into the response-cache key, so a
change of template can never serve a stale answer.

Some chat templates (Gemma-2, older Mistral-Instruct) refuse a system message. Whether a
template does is decided once per tokenizer (`probe_template`), and such a template gets the
system text folded into the first user turn: system text, a blank line, the user text (what
Gemma 3's own template does with a system message). lm-evaluation-harness instead drops the
system message when a template raises; that would silently remove the toxicity and stereotype
prompts, which are what those dimensions measure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import TrustError, one_line

Role = Literal["system", "user", "assistant"]
ChatKind = Literal["template", "vicuna", "llama2", "plain"]
# --trust-chat-format: "auto" is the model registry's choice, the others force a layout
CHAT_FORMAT_CHOICES = ("auto", "template", "plain", "vicuna", "llama2")
FOLDED_NAME = "template+fold-system"  # the effective format's name in identities and cache keys
TemplateApply = Callable[[list[dict[str, str]]], str]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


@dataclass(frozen=True)
class ChatFormat:
    """How one model family wants a conversation laid out.

    kind:
      - "template": the tokenizer's own chat template (SmolLM2, most instruct models)
      - "vicuna":   FastChat's vicuna_v1.1 layout (USER:/ASSISTANT:, </s> after answers)
      - "llama2":   [INST] <<SYS>> ... [/INST]
      - "plain":    base models: turns joined as text, ending with an answer cue

    fold_system (template only): the template rejects a system role, so system text is folded
    into the first user turn that follows it (decided by `probe_template`, never by the caller).
    """

    kind: ChatKind
    fold_system: bool = False

    @property
    def name(self) -> str:
        """The effective format, as identities name it ("template" stays "template", so keys of
        templates that accept a system role are unchanged)."""
        return FOLDED_NAME if self.fold_system else self.kind

    @property
    def adds_special_tokens(self) -> bool:
        """Whether the tokenizer should prepend BOS itself (templates usually include it)."""
        return self.kind != "template"

    def render(
        self,
        messages: Sequence[Message],
        apply_template: Callable[[list[dict[str, str]]], str] | None = None,
    ) -> str:
        if not messages or messages[-1].role == "assistant":
            raise ValueError("a prompt must end with a user turn")
        if self.kind == "template":
            if apply_template is None:
                raise ValueError("template chat format needs the tokenizer's template")
            turns = fold_system(messages) if self.fold_system else tuple(messages)
            return apply_template(_as_dicts(turns))
        if self.kind == "vicuna":
            return _render_vicuna(messages)
        if self.kind == "llama2":
            return _render_llama2(messages)
        return _render_plain(messages)


def _render_vicuna(messages: Sequence[Message]) -> str:
    system = VICUNA_SYSTEM
    parts: list[str] = []
    for m in messages:
        if m.role == "system":
            system = m.content
        elif m.role == "user":
            parts.append(f"USER: {m.content}")
        else:
            parts.append(f"ASSISTANT: {m.content}</s>")
    return system + " " + " ".join(parts) + " ASSISTANT:"


def _render_llama2(messages: Sequence[Message]) -> str:
    system = ""
    text = ""
    first_user = True
    for m in messages:
        if m.role == "system":
            system = m.content
        elif m.role == "user":
            content = m.content
            if first_user and system:
                content = f"<<SYS>>\n{system}\n<</SYS>>\n\n{content}"
            first_user = False
            text += f"[INST] {content.strip()} [/INST]"
        else:
            text += f" {m.content.strip()} </s><s>"
    return text


def _render_plain(messages: Sequence[Message]) -> str:
    lines: list[str] = []
    for m in messages:
        if m.role == "system":
            lines.append(m.content)
        elif m.role == "user":
            lines.append(m.content)
        else:
            lines.append(f"Answer: {m.content}")
    return "\n\n".join(lines) + "\nAnswer:"


def fold_system(messages: Sequence[Message]) -> tuple[Message, ...]:
    """The conversation without system turns: each system text goes, followed by a blank line,
    in front of the next user turn (several system texts are joined by blank lines)."""
    folded: list[Message] = []
    pending: list[str] = []
    for m in messages:
        if m.role == "system":
            pending.append(m.content)
        elif m.role == "user" and pending:
            folded.append(Message("user", "\n\n".join([*pending, m.content])))
            pending = []
        else:
            folded.append(m)
    return tuple(folded)


def _as_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


_PROBE_SYSTEM = Message("system", "You are a helpful assistant.")
_PROBE_USER = Message("user", "Hello.")


def probe_template(apply_template: TemplateApply, model: str) -> ChatFormat:
    """The template format for one tokenizer, decided once with a tiny conversation.

    A template that renders a system turn is used as it is. One that fails on a system turn but
    renders the same user turn alone rejects the system role (whatever its error says: Gemma-2
    raises "System role not supported", Mistral-Instruct v0.1 "roles must alternate"), so system
    text gets folded. One that cannot render a lone user turn either is broken for every prompt:
    a TrustError naming the way out.
    """
    try:
        apply_template(_as_dicts((_PROBE_SYSTEM, _PROBE_USER)))
        return ChatFormat("template")
    except Exception:  # noqa: BLE001 - a template may raise anything; the second probe tells why
        pass
    try:
        apply_template(_as_dicts((_PROBE_USER,)))
    except Exception as exc:  # noqa: BLE001
        raise TrustError(template_failure(model, exc)) from None
    return ChatFormat("template", fold_system=True)


def template_failure(model: str, exc: BaseException) -> str:
    """One line for a chat template that raised: its own message, and how to go around it."""
    lines = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {one_line(lines[0])}" if lines else type(exc).__name__
    return (
        f"--model={model}: its chat template fails ({detail}); fix the template, or choose a layout with "
        f"--trust-chat-format=plain, vicuna or llama2"
    )


def no_template_message(model: str, asked: str) -> str:
    """One line for a tokenizer without a chat template where the template layout was chosen."""
    who = (
        f"--trust-chat-format=template: the tokenizer of {model}"
        if asked == "template"
        else f"--model={model}: its tokenizer"
    )
    return f"{who} has no chat template; use --trust-chat-format=plain for a base model, or vicuna or llama2"


def check_chat_format(value: str) -> None:
    """Torch-free option check of --trust-chat-format."""
    if value not in CHAT_FORMAT_CHOICES:
        raise TrustError(f"--trust-chat-format={one_line(value)}: choose one of {', '.join(CHAT_FORMAT_CHOICES)}")
