"""The HF backend on a tiny random llama (fp32): batching must not change answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import comptrust_plugin.engine.batching as batching
from comptrust_plugin.engine.hf import HFBackend
from comptrust_plugin.engine.requests import GenerationSettings
from comptrust_plugin.models.loading import load_model
from comptrust_plugin.models.registry import resolve_model

PREAMBLE = "You are a careful assistant. Here are many worked examples of the task. " * 4


@pytest.fixture(scope="module")
def loaded(random_model: Path, tmp_path_factory: pytest.TempPathFactory):
    entry = resolve_model(str(random_model))
    return load_model(entry, tmp_path_factory.mktemp("c"), torch.device("cpu"), torch.float32)


def _prompts() -> list[str]:
    shared = [f"{PREAMBLE}Question {i}: {'why ' * (i % 5)}is the sky blue?" for i in range(10)]
    loose = [f"Item {i} {'word ' * i}" for i in range(8)]
    return shared + loose


def _run(backend: HFBackend, prompts: list[str], settings: GenerationSettings, seeds=None) -> list[list[str]]:
    out: dict[int, list[str]] = {}
    backend.generate(prompts, settings, seeds or [7] * len(prompts), lambda i, o: out.__setitem__(i, o))
    return [out[i] for i in range(len(prompts))]


def test_batched_equals_one_at_a_time_and_prefix_sharing_is_exact(loaded, monkeypatch) -> None:
    settings = GenerationSettings(max_new_tokens=8, stop=())
    prompts = _prompts()
    batched = _run(HFBackend(loaded), prompts, settings)
    single = _run(HFBackend(loaded, max_batch_size=1), prompts, settings)
    monkeypatch.setattr(batching, "PASS_OVERHEAD_TOKENS", 0)  # every suffix length in a pass of its own
    split = _run(HFBackend(loaded), prompts, settings)
    monkeypatch.setattr(batching, "MIN_SHARED_PREFIX", 10**9)
    unshared = _run(HFBackend(loaded), prompts, settings)
    assert batched == single == split == unshared


def test_rows_stopping_at_different_steps_leave_the_others_unchanged(loaded) -> None:
    """Rows that stop early are dropped from the batch (and from the in-place KV cache) mid-
    decode; the rows left must decode as they would alone."""
    settings = GenerationSettings(max_new_tokens=10, stop=("d",))
    prompts = _prompts()
    batched = _run(HFBackend(loaded), prompts, settings)
    single = _run(HFBackend(loaded, max_batch_size=1), prompts, settings)
    free = _run(HFBackend(loaded), prompts, GenerationSettings(max_new_tokens=10, stop=()))
    assert batched == single
    lengths = {len(loaded.tokenizer.encode(b[0], add_special_tokens=False)) for b, f in zip(batched, free) if b != f}
    assert len(lengths) > 1  # rows really did stop at different steps


def test_plan_shares_the_long_prefix_only(loaded) -> None:
    backend = HFBackend(loaded)
    prompts = _prompts()
    encoded = [backend._encode(p) for p in prompts]
    plan = backend.plan(encoded, [(i, 0) for i in range(len(prompts))], 8)
    prefixes = {i: prefix for batch in plan for (i, _), prefix in batch}
    assert all(prefixes[i] >= batching.MIN_SHARED_PREFIX for i in range(10))
    assert all(prefixes[i] == 0 for i in range(10, 18))
    assert sorted(i for batch in plan for (i, _), _ in batch) == list(range(18))
    assert len(plan) == 1  # the group and the loose rows share one batch: one decode loop
    # under a tight budget the batches split, and each stays within it
    small = HFBackend(loaded, max_batch_tokens=200)
    tight = small.plan(encoded, [(i, 0) for i in range(len(prompts))], 8)
    assert len(tight) > 1 and sorted(i for batch in tight for (i, _), _ in batch) == list(range(18))
    assert all(len(b) == 1 or batching.batch_cost(b, encoded, 8) <= 200 for b in tight)


def test_prefill_mixing_prefix_groups_equals_plain_prefill(loaded) -> None:
    """Two groups with prefixes of different lengths and a loose row in one batch: the
    next-token logits equal an unshared left-padded prefill of the same prompts (fp32)."""
    backend = HFBackend(loaded)
    prompts = [PREAMBLE + "Q1: sky?", PREAMBLE + "Q2: sea colour?", "Short " * 9 + "one", "Short " * 9 + "two",
               "Alone here"]
    encoded = [backend._encode(p) for p in prompts]
    long_prefix = batching.common_prefix(encoded[:2])
    short_prefix = batching.common_prefix(encoded[2:4])
    shared, *_, shared_rows = backend._prefill(encoded, [long_prefix, long_prefix, short_prefix, short_prefix, 0])
    plain, *_, plain_rows = backend._prefill(encoded, [0] * 5)
    # results come in computed order (longest own part first): put both in prompt order
    shared, plain = shared[torch.tensor(shared_rows).argsort()], plain[torch.tensor(plain_rows).argsort()]
    assert long_prefix > short_prefix > 1
    # the heads (long, short, the loose row's first token) run as three passes
    assert batching.passes([long_prefix, short_prefix, 1], 0) == [[0], [1], [2]]
    torch.testing.assert_close(shared, plain, atol=1e-4, rtol=1e-4)


def test_passes_split_where_the_padding_saved_exceeds_the_cost_of_a_pass() -> None:
    # padded tokens + 64 per pass: one pass of all would be 6 x 300 + 64 = 1864
    assert batching.passes([300, 27, 290, 160, 26, 1], 64) == [[0, 2], [3], [1, 4, 5]]  # 600+160+81+192 = 1033
    assert batching.passes([40, 39, 38], 64) == [[0, 1, 2]]
    assert batching.passes([40, 39, 38], 0) == [[0], [1], [2]]
    assert batching.passes([5], 64) == [[0]] and batching.passes([], 64) == []


@pytest.mark.parametrize("overhead", [0, 64, 10**9])
def test_prefill_in_suffix_passes_equals_each_prompt_alone(loaded, monkeypatch, overhead: int) -> None:
    """Suffixes of unlike lengths in passes of their own (written right-aligned into one
    left-padded cache), or all in one: every row's next-token logits, and the logits after
    one decode step through that cache, equal the prompt run alone (fp32)."""
    monkeypatch.setattr(batching, "PASS_OVERHEAD_TOKENS", overhead)
    backend = HFBackend(loaded)
    prompts = [PREAMBLE + "Q: " + "why " * k + "?" for k in (0, 3, 9, 20)] + ["Plain " * k + "end" for k in (1, 6, 15)]
    encoded = [backend._encode(p) for p in prompts]
    shared = batching.common_prefix(encoded[:4])
    logits, cache, attention, last, rows = backend._prefill(encoded, [shared] * 4 + [0] * 3)
    assert sorted(rows) == list(range(len(prompts)))
    step_ids = logits[:, -1].argmax(-1)
    attention = torch.cat([attention, attention.new_ones((len(prompts), 1))], dim=1)
    step = backend._forward(input_ids=step_ids.view(-1, 1), attention_mask=attention, position_ids=last + 1,
                            cache=cache, use_cache=True).logits[:, -1]
    with torch.no_grad():
        for row, prompt in enumerate(rows):
            alone = loaded.model(torch.tensor([encoded[prompt] + [int(step_ids[row])]])).logits[0]
            torch.testing.assert_close(logits[row, -1], alone[-2], atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(step[row], alone[-1], atol=1e-4, rtol=1e-4)


def test_max_new_tokens_and_stop_strings(loaded) -> None:
    backend = HFBackend(loaded)
    free = _run(backend, ["Tell me"], GenerationSettings(max_new_tokens=12, stop=()))[0][0]
    assert 0 < len(loaded.tokenizer.encode(free, add_special_tokens=False)) <= 13
    stop = free.strip()[:3][-1]
    cut = _run(backend, ["Tell me"], GenerationSettings(max_new_tokens=12, stop=(stop,)))[0][0]
    assert stop not in cut.strip() and free.startswith(cut)


def test_seeded_sampling_is_reproducible_and_batch_independent(loaded) -> None:
    settings = GenerationSettings(max_new_tokens=6, temperature=1.0, num_samples=3, stop=())
    prompts = _prompts()[:6]
    seeds = list(range(6))
    first = _run(HFBackend(loaded), prompts, settings, seeds)
    again = _run(HFBackend(loaded, max_batch_size=2), prompts, settings, seeds)
    assert first == again
    assert any(len(set(samples)) > 1 for samples in first)  # samples of one prompt differ
    other = _run(HFBackend(loaded), prompts, settings, [s + 100 for s in seeds])
    assert other != first


def _direct_loglikelihood(loaded, context: str, continuation: str) -> tuple[float, bool]:
    """One plain forward pass over context + continuation, no batching or sharing."""
    tok = loaded.tokenizer
    ctx = tok(context, add_special_tokens=True)["input_ids"]
    cont = tok(continuation, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logprobs = torch.log_softmax(loaded.model(torch.tensor([ctx + cont])).logits.float(), dim=-1)[0]
    slots = logprobs[len(ctx) - 1 : len(ctx) - 1 + len(cont)]
    total = sum(float(slots[k, t]) for k, t in enumerate(cont))
    return total, bool((slots.argmax(-1) == torch.tensor(cont)).all())


def test_loglikelihood_matches_a_direct_computation(loaded) -> None:
    backend = HFBackend(loaded)
    pairs = [("The answer is", " yes"), ("Q: colour of sky? A:", " blue sky")]
    got: dict[int, tuple[float, bool]] = {}
    backend.loglikelihood(pairs, lambda i, v: got.__setitem__(i, v))
    for index, (context, continuation) in enumerate(pairs):
        assert got[index][0] == pytest.approx(_direct_loglikelihood(loaded, context, continuation)[0], abs=1e-4)


def test_loglikelihood_with_shared_prefixes_matches_a_direct_computation(loaded) -> None:
    """Few-shot multiple choice: a long preamble shared by every question, four options per
    question. The shared passes must give the plain full-sequence log-likelihoods."""
    preamble = "".join(f"Question: what is {a} plus {b}?\nAnswer: {a + b}\n\n" for a, b in [(1, 2), (3, 4), (5, 6)])
    pairs = [(f"{preamble}Question: what is {q} plus 1?\nAnswer:", f" {option}")
             for q in (7, 8, 9) for option in (q + 1, q + 2, q, 0)] + [("Hi", " there"), ("X", " y z")]
    backend = HFBackend(loaded)
    joined = [backend._encode(c) + loaded.tokenizer(o, add_special_tokens=False)["input_ids"] for c, o in pairs]
    assert any(prefix >= 32 for batch in backend.plan(joined, [(i, 0) for i in range(len(pairs))], 0)
               for _, prefix in batch)  # the preamble is shared
    got: dict[int, tuple[float, bool]] = {}
    backend.loglikelihood(pairs, lambda i, v: got.__setitem__(i, v))
    for index, (context, continuation) in enumerate(pairs):
        total, greedy = _direct_loglikelihood(loaded, context, continuation)
        assert got[index][0] == pytest.approx(total, abs=1e-4), pairs[index]
        assert got[index][1] == greedy


def test_resumed_run_recomputes_identically_in_bf16(random_model: Path, tmp_path: Path) -> None:
    """Half the answers lost (an interrupted run): the rerun computes only batches holding a lost
    answer, batched exactly as before, so even bf16 numerics give the very same answers."""
    from comptrust_plugin.engine.cache import ResponseCache
    from comptrust_plugin.engine.cached import CachedEngine
    from comptrust_plugin.engine.requests import GenerationRequest
    from comptrust_plugin.models.chat import Message

    loaded = load_model(resolve_model(str(random_model)), tmp_path, torch.device("cpu"), torch.bfloat16)
    settings = GenerationSettings(max_new_tokens=6, stop=())
    requests = [GenerationRequest(f"r{i}", (Message("user", p),), settings) for i, p in enumerate(_prompts())]

    def engine(cache: ResponseCache) -> CachedEngine:
        render = lambda: lambda messages: messages[-1].content  # noqa: E731
        return CachedEngine({"m": 1}, cache, render, lambda: HFBackend(loaded, max_batch_size=4))

    cache = ResponseCache(tmp_path / "c.sqlite3")
    full = engine(cache).generate(requests)
    keys = sorted(r[0] for r in cache._conn.execute("SELECT key FROM responses"))
    with cache._conn:
        cache._conn.executemany("DELETE FROM responses WHERE key = ?", [(k,) for k in keys[::2]])
    resumed = engine(cache)
    assert resumed.generate(requests) == full
    assert 0 < resumed.stats.misses < len(requests)


def test_prefix_groups_follow_the_prefix_tree() -> None:
    """Two five-shot preambles under one system prompt: one group each, sharing the whole
    preamble; the short branches left under the system prompt share it as a third group; a
    lone prompt goes to the pool."""
    system = list(range(1000, 1040))  # 40 shared tokens
    preamble_a, preamble_b = list(range(2000, 2100)), list(range(3000, 3100))
    encoded = [system + preamble_a + [i, 7] for i in range(10)]  # 0-9: subject a
    encoded += [system + preamble_b + [i, 7] for i in range(10)]  # 10-19: subject b
    encoded += [list(range(5000, 5050))]  # 20: unrelated
    encoded += [system + [9000 + i] * 3 for i in range(3)]  # 21-23: too few for their own group
    rows = [(i, 0) for i in range(len(encoded))]
    groups, pool = batching.prefix_groups(encoded, rows)
    found = {tuple(sorted(i for i, _ in members)): prefix for members, prefix in groups}
    assert found == {tuple(range(10)): 140, tuple(range(10, 20)): 140, (21, 22, 23): 40}
    assert sorted(i for i, _ in pool) == [20]
    # a lone row under the system prompt shares nothing with anyone: pool
    groups, pool = batching.prefix_groups(encoded[:22], rows[:22])
    assert sorted(i for i, _ in pool) == [20, 21]
    assert batching.prefix_groups([], []) == ([], [])
    # a prompt that is a prefix of another (same next token at the cut): no endless split
    nested = [list(range(100)), list(range(101))]
    groups, pool = batching.prefix_groups(nested, [(0, 0), (1, 0)])
    assert groups == [([(0, 0), (1, 0)], 99)] and pool == []
