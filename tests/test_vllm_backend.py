"""The vLLM backend's translations (our requests -> vLLM inputs, vLLM outputs -> ours), checked
against a fake `vllm` module: vLLM itself needs a CUDA GPU (benchmarks/gpu_check_vllm.py)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from comptrust_plugin.engine import vllm as vllm_backend
from comptrust_plugin.engine.requests import GenerationSettings
from comptrust_plugin.errors import TrustError


class FakeTokenizer:
    """One token per character (ids = code points), a BOS of 1 when special tokens are added."""

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": ([1] if add_special_tokens else []) + [ord(c) for c in text]}


@dataclass
class SamplingParams:
    kwargs: dict[str, Any]

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


@dataclass
class Logprob:
    logprob: float
    rank: int


@dataclass
class FakeLLM:
    """Answers `answer(prompt ids, params)`; records every call."""

    answer: Any
    calls: list[tuple[list[dict[str, Any]], Any]] = field(default_factory=list)

    def generate(self, inputs: list[dict[str, Any]], params: Any, use_tqdm: bool = True) -> list[Any]:
        assert use_tqdm is False  # progress bars would flood captured test output
        self.calls.append((inputs, params))
        many = params if isinstance(params, list) else [params] * len(inputs)
        return [self.answer(i["prompt_token_ids"], p) for i, p in zip(inputs, many)]


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("vllm")
    module.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def _text_output(text: str) -> Any:
    return types.SimpleNamespace(outputs=[types.SimpleNamespace(text=text)], prompt_logprobs=None)


def test_greedy_requests_become_token_prompts_and_answers_are_cut_like_hf(fake_vllm: types.ModuleType) -> None:
    llm = FakeLLM(lambda ids, params: _text_output(" \nYes, it is.\nMore text"))
    backend = vllm_backend.VLLMBackend(llm, FakeTokenizer(), add_special_tokens=False)
    done: dict[int, list[str]] = {}
    settings = GenerationSettings(max_new_tokens=7, stop=("\n",))
    backend.generate(["ab", "c"], settings, [11, 12], lambda i, out: done.__setitem__(i, out))
    inputs, params = llm.calls[0]
    assert inputs == [{"prompt_token_ids": [97, 98]}, {"prompt_token_ids": [99]}]
    assert [p.kwargs for p in params] == [{"max_tokens": 7, "n": 1, "temperature": 0.0}] * 2
    # a stop string counts only after the leading blanks, as in the HF backend
    assert done == {0: [" \nYes, it is."], 1: [" \nYes, it is."]}


def test_each_sample_is_its_own_seeded_request_and_only_needed_prompts_run(fake_vllm: types.ModuleType) -> None:
    llm = FakeLLM(lambda ids, params: _text_output(f"s{params.kwargs['seed']}"))
    backend = vllm_backend.VLLMBackend(llm, FakeTokenizer(), add_special_tokens=True)
    done: dict[int, list[str]] = {}
    settings = GenerationSettings(temperature=0.7, top_p=0.9, num_samples=2, stop=())
    backend.generate(["a", "b", "c"], settings, [5, 6, 7], lambda i, out: done.__setitem__(i, out), needed={2})
    inputs, params = llm.calls[0]
    assert inputs == [{"prompt_token_ids": [1, 99]}] * 2  # special tokens as the chat format asks
    assert [p.kwargs for p in params] == [
        {"max_tokens": 20, "n": 1, "temperature": 0.7, "top_p": 0.9, "seed": 7 * 1_000_003 + s} for s in (0, 1)
    ]
    assert done == {2: [f"s{7 * 1_000_003}", f"s{7 * 1_000_003 + 1}"]}


def test_nothing_needed_means_no_vllm_call(fake_vllm: types.ModuleType) -> None:
    llm = FakeLLM(lambda ids, params: _text_output("x"))
    vllm_backend.VLLMBackend(llm, FakeTokenizer(), False).generate(
        ["a"], GenerationSettings(), [0], lambda i, out: None, needed=set()
    )
    assert llm.calls == []


def test_loglikelihood_sums_the_continuations_prompt_logprobs(fake_vllm: types.ModuleType) -> None:
    def answer(ids: list[int], params: Any) -> Any:
        assert params.kwargs == {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1}
        # position 0 has no logprob in vLLM; each later token: -0.5, rank 1 except token "z"
        logprobs = [None] + [{t: Logprob(-0.5, 2 if t == ord("z") else 1)} for t in ids[1:]]
        return types.SimpleNamespace(outputs=[], prompt_logprobs=logprobs)

    backend = vllm_backend.VLLMBackend(FakeLLM(answer), FakeTokenizer(), add_special_tokens=False)
    done: dict[int, tuple[float, bool]] = {}
    backend.loglikelihood([("ctx", " yes"), ("ctx", " z"), ("ctx", "")], lambda i, v: done.__setitem__(i, v))
    assert done == {0: (-2.0, True), 1: (-1.0, False), 2: (0.0, True)}


def test_a_missing_vllm_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # what `import vllm` sees when it is not installed
    monkeypatch.setattr(vllm_backend.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(TrustError, match=r"needs vLLM: pip install 'comptrust\[vllm\]'"):
        vllm_backend.check_backend("vllm", "auto")
    with pytest.raises(TrustError, match=r"needs vLLM"):
        vllm_backend.VLLMBackend(object(), FakeTokenizer(), False)


@pytest.mark.parametrize(
    ("name", "device", "message"),
    [("tgi", "auto", "choose one of hf, vllm"), ("vllm", "cpu", "runs on CUDA GPUs only")],
)
def test_backend_option_checks(name: str, device: str, message: str) -> None:
    with pytest.raises(TrustError, match=message):
        vllm_backend.check_backend(name, device)


def test_hf_needs_nothing_extra() -> None:
    vllm_backend.check_backend("hf", "cpu")
