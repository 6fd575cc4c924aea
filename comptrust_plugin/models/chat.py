"""Render chat messages into the prompt text a given model expects.

Torch-free: dimensions build `Message` tuples, the engine renders them with the model's
`ChatFormat`. The rendered text (not the messages) goes into the response-cache key, so a
change of template can never serve a stale answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]


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
    """

    kind: Literal["template", "vicuna", "llama2", "plain"]

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
            return apply_template([{"role": m.role, "content": m.content} for m in messages])
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
