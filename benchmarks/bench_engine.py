"""The generation engine against a one-prompt-at-a-time loop, and against the hardware ceiling.

    python benchmarks/bench_engine.py [--prompts 64] [--new-tokens 32] [--dtype fp32]

1. Generation: the same prompts (the first N machine-ethics smoke prompts, chat-rendered),
   greedy, N new tokens, generated (a) one prompt at a time with `model.generate`, the pattern
   of the reference benchmark's scripts, and (b) by comptrust's HF backend (length-sorted
   batches, KV cache, shared-prefix reuse). Prints both times, the speed-up, and how many
   outputs differ. In fp32 (default) padding and batching do not move greedy outputs, so they
   must be identical; in bf16 a few near-ties can flip, and the count says how many.
2. Hardware ceiling: the machine's dense matmul throughput (a square bf16/fp32 GEMM), and the
   prefill throughput of the model in tokens/s, as a fraction of the FLOP-bound ceiling
   (2 x parameters FLOPs per token).
Every figure is measured in this one run, side by side.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument(
        "--cache", default=os.environ.get("COMPTRUST_CACHE_DIR", str(Path.home() / ".cache/comptrust")),
    )
    args = parser.parse_args()

    import torch

    from comptrust_plugin.data.probes import load_probe_set
    from comptrust_plugin.dimensions import machine_ethics
    from comptrust_plugin.engine.hf import HFBackend
    from comptrust_plugin.engine.requests import GenerationSettings
    from comptrust_plugin.models.loading import load_model
    from comptrust_plugin.models.registry import resolve_model

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    entry = resolve_model("smollm2-135m")
    loaded = load_model(entry, Path(args.cache).expanduser(), torch.device("cpu"), dtype)
    model, tokenizer = loaded.model, loaded.tokenizer
    probes = machine_ethics.select(load_probe_set("machine_ethics").probes, "smoke", 0)
    requests = machine_ethics.build_requests(probes)[: args.prompts]

    def apply(messages: list[dict[str, str]]) -> str:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    prompts = [entry.chat_format.render(r.messages, apply) for r in requests]
    print(f"# embedded smollm2-135m, {args.dtype}, CPU x{os.cpu_count()}, {len(prompts)} machine-ethics "
          f"prompts, greedy, {args.new_tokens} new tokens, load avg {os.getloadavg()[0]:.1f}")

    # (a) one prompt at a time, model.generate (after one untimed call, as the engine's second
    # call below runs warm)
    single: list[str] = []
    with torch.inference_mode():
        ids = tokenizer(prompts[0], return_tensors="pt", add_special_tokens=entry.chat_format.adds_special_tokens)
        model.generate(**ids, max_new_tokens=args.new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    start = time.perf_counter()
    with torch.inference_mode():
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=entry.chat_format.adds_special_tokens)
            out = model.generate(
                **ids, max_new_tokens=args.new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id,
            )
            single.append(tokenizer.decode(out[0, ids.input_ids.shape[1] :], skip_special_tokens=True))
    loop_seconds = time.perf_counter() - start

    # (b) the engine, twice: the first call also pays one-time costs of its batch shapes (kernel
    # setup in the CPU math library, allocator growth) that the loop paid on its first prompts
    backend = HFBackend(loaded)
    settings = GenerationSettings(max_new_tokens=args.new_tokens, stop=())
    timings = []
    for _ in range(2):
        batched: dict[int, list[str]] = {}
        start = time.perf_counter()
        backend.generate(prompts, settings, [0] * len(prompts), batched.__setitem__)
        timings.append(time.perf_counter() - start)
        differ = sum(single[i] != batched[i][0] for i in range(len(prompts)))
    first, second = timings
    print(f"generation: one at a time {loop_seconds:.1f} s; engine {first:.1f} s on its first call "
          f"(speed-up {loop_seconds / first:.2f}x), {second:.1f} s on a second (speed-up "
          f"{loop_seconds / second:.2f}x); outputs differing: {differ} of {len(prompts)}")

    # hardware ceiling: dense GEMM throughput in the model's dtype
    size = 2048
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    a @ b
    runs = 10
    start = time.perf_counter()
    for _ in range(runs):
        a @ b
    gemm = 2 * size**3 * runs / (time.perf_counter() - start)
    # prefill: 8 windows of 512 tokens, no cache, logits of the last position only
    params = sum(p.numel() for p in model.parameters())
    ids = torch.randint(100, tokenizer.vocab_size - 1, (8, 512))
    with torch.inference_mode():
        model(input_ids=ids[:1, :64], use_cache=False, logits_to_keep=1)
        start = time.perf_counter()
        model(input_ids=ids, use_cache=False, logits_to_keep=1)
        prefill = ids.numel() / (time.perf_counter() - start)
    # The embedding is a lookup, not a matmul, and with logits for the last position only the
    # LM head runs once per window: the honest count leaves both out (tied: one matrix).
    embedding = model.get_input_embeddings().weight.numel()
    for name, count in (("all", params), ("non-embedding", params - embedding)):
        achieved = prefill * 2 * count
        print(f"matmul ceiling ({args.dtype}, {size}^3 GEMM): {gemm / 1e9:.0f} GFLOP/s; prefill {prefill:.0f} "
              f"tokens/s = {achieved / 1e9:.0f} GFLOP/s at 2 x {count / 1e6:.0f}M {name} params per token: "
              f"{100 * achieved / gemm:.0f}% of the ceiling")


if __name__ == "__main__":
    main()
