"""vLLM backend (optional extra `comptrust[vllm]`): the HF backend's interface, served by vLLM on CUDA GPUs.

For large models, throughput and tensor parallelism.

vLLM is imported only when this backend is created, so comptrust installs and runs without it.
Everything vLLM-specific is a translation: our requests -> `SamplingParams` + prompt token ids,
vLLM's `RequestOutput`s -> our outputs. Those translations are pure and unit-tested with a fake
`vllm` module; running the real thing needs a GPU (benchmarks/gpu_check_vllm.py).

What differs from HF, by design: vLLM schedules and batches requests itself, so answers do not
depend on our batch plan, and its sampling uses its own per-request seeded generator, so sampled
answers match HF's in distribution, not token for token (the engine identity names the backend,
so the two never share cached answers). Greedy answers should match up to kernel numerics.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Collection, Sequence
from typing import Any

from ..errors import TrustError
from .requests import GenerationSettings, OnGenerated, OnScored, finish_text

BACKENDS = ("hf", "vllm")
MISSING_VLLM = (
    "--trust-backend=vllm needs vLLM: pip install 'comptrust[vllm]' (Linux with a CUDA GPU), "
    "or use --trust-backend=hf"
)


def check_backend(name: str, device: str) -> None:
    """Torch-free option check: a known backend, and vLLM only where it can run."""
    if name not in BACKENDS:
        raise TrustError(f"--trust-backend={name}: choose one of {', '.join(BACKENDS)}")
    if name != "vllm":
        return
    if device not in ("auto", "cuda") and not device.startswith("cuda:"):
        raise TrustError(f"--trust-backend=vllm runs on CUDA GPUs only, not --trust-device={device}; use hf there")
    if sys.modules.get("vllm") is None and importlib.util.find_spec("vllm") is None:
        raise TrustError(MISSING_VLLM)


def _vllm() -> Any:
    try:
        return importlib.import_module("vllm")
    except ImportError:
        raise TrustError(MISSING_VLLM) from None


def sampling_params(vllm: Any, settings: GenerationSettings, seed: int, sample: int) -> Any:
    """One `SamplingParams` for one answer (one row): our settings, and a seed per row.

    Each sample of a prompt is its own request with its own seed (as the HF backend draws each
    row from its own generator), so an answer never depends on what else was scheduled with it.
    Stop strings are applied by us afterwards (`requests.finish_text`, as the HF backend does):
    ours count only once the answer has some non-blank text, vLLM's own would stop at a leading
    newline. So vLLM decodes up to max_tokens, a few tokens more than needed.
    """
    kwargs: dict[str, Any] = {"max_tokens": settings.max_new_tokens, "n": 1}
    if settings.greedy:
        kwargs["temperature"] = 0.0
    else:
        kwargs.update(
            temperature=settings.temperature, top_p=settings.top_p,
            seed=(seed * 1_000_003 + sample) % (2**63 - 1),
        )
    return vllm.SamplingParams(**kwargs)


def continuation_logprob(prompt_logprobs: Sequence[Any], tokens: Sequence[int], n: int) -> tuple[float, bool]:
    """(sum of log p, is greedy) of the last `n` tokens, from vLLM's `prompt_logprobs`.

    vLLM gives, per prompt position, a dict token id -> Logprob (with `.logprob` and `.rank`):
    always the actual token's entry, plus the top-k (k = the `prompt_logprobs` we asked, 1).
    A token is the greedy choice when its rank is 1.
    """
    if n == 0:
        return 0.0, True
    total, greedy = 0.0, True
    for position in range(len(tokens) - n, len(tokens)):
        entry = prompt_logprobs[position][tokens[position]]
        total += float(entry.logprob)
        greedy = greedy and getattr(entry, "rank", None) == 1
    return total, greedy


class VLLMBackend:
    """Backend on a `vllm.LLM`. Prompts go in as token ids from our tokenizer, so the chat
    template, special tokens and truncation are exactly those the HF backend sees."""

    def __init__(self, llm: Any, tokenizer: Any, add_special_tokens: bool, vllm: Any | None = None) -> None:
        self.llm = llm
        self.tokenizer = tokenizer
        self.add_special_tokens = add_special_tokens
        self.vllm = vllm if vllm is not None else _vllm()

    @classmethod
    def create(
        cls, weights: str, revision: str | None, tokenizer: str, tokenizer_revision: str | None, dtype: str,
        trust_remote_code: bool, tokenizer_object: Any, add_special_tokens: bool,
    ) -> VLLMBackend:
        """Start vLLM on every GPU this process sees (tensor parallel): one in a pinned xdist
        worker, all visible GPUs in a single-process run."""
        vllm = _vllm()
        import torch

        llm = vllm.LLM(
            model=weights, revision=revision, tokenizer=tokenizer, tokenizer_revision=tokenizer_revision, dtype=dtype,
            trust_remote_code=trust_remote_code, tensor_parallel_size=max(1, torch.cuda.device_count()),
        )
        return cls(llm, tokenizer_object, add_special_tokens, vllm)

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=self.add_special_tokens)["input_ids"])

    def generate(
        self, prompts: Sequence[str], settings: GenerationSettings, seeds: Sequence[int],
        on_done: OnGenerated, needed: Collection[int] | None = None,
    ) -> None:
        wanted = sorted(range(len(prompts)) if needed is None else needed)
        if not wanted:
            return
        inputs, params, rows = [], [], []
        for i in wanted:
            ids = self._encode(prompts[i])
            for sample in range(settings.num_samples):
                inputs.append({"prompt_token_ids": ids})
                params.append(sampling_params(self.vllm, settings, seeds[i], sample))
                rows.append(i)
        outputs = self.llm.generate(inputs, params, use_tqdm=False)
        answers: dict[int, list[str]] = {}
        for i, output in zip(rows, outputs):
            answers.setdefault(i, []).append(finish_text(output.outputs[0].text, settings.stop))
        for i in wanted:
            on_done(i, answers[i])

    def loglikelihood(self, pairs: Sequence[tuple[str, str]], on_done: OnScored) -> None:
        if not pairs:
            return
        inputs, lengths = [], []
        for context, continuation in pairs:
            ctx = self._encode(context)
            cont = list(self.tokenizer(continuation, add_special_tokens=False)["input_ids"])
            inputs.append({"prompt_token_ids": ctx + cont})
            lengths.append(len(cont))
        params = self.vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        outputs = self.llm.generate(inputs, params, use_tqdm=False)
        for i, (given, output, n) in enumerate(zip(inputs, outputs, lengths)):
            on_done(i, continuation_logprob(output.prompt_logprobs, given["prompt_token_ids"], n))
