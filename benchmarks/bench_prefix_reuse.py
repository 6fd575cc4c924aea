"""Shared-prefix reuse on the few-shot dimensions: the same requests with and without it.

    python benchmarks/bench_prefix_reuse.py [--samples smoke] [--dims adversarial_robustness,...]

For each dimension, generates every smoke-tier answer of the dense embedded model twice in
this one process, with the engine's prefix tree on and then off (MIN_SHARED_PREFIX raised
out of reach), on an empty response cache each time. Prints seconds, prompt tokens computed,
the speed-up, and how many answers differ (bf16 padding/batching can move a near-tie).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comptrust_plugin.data.probes import load_probe_set  # noqa: E402
from comptrust_plugin.engine import batching, hf  # noqa: E402
from comptrust_plugin.options import TrustOptions, default_cache_dir  # noqa: E402
from comptrust_plugin.session import TrustSession  # noqa: E402

FEW_SHOT = (
    "adversarial_robustness", "ood_robustness", "adversarial_demonstrations", "fairness", "benign_utility",
    "machine_ethics",
)
DIMENSIONS = {name: importlib.import_module(f"comptrust_plugin.dimensions.{name}") for name in FEW_SHOT}


def prompt_tokens(backend: hf.HFBackend, prompts: list[str], shared: bool) -> int:
    """Prompt tokens the plan computes: per batch, each distinct prefix once plus each row's own."""
    encoded = [backend._encode(p) for p in prompts]
    plan = backend.plan(encoded, [(i, 0) for i in range(len(prompts))], 1) if shared else None
    if plan is None:
        return sum(len(e) for e in encoded)
    total = 0
    for batch in plan:
        heads = {tuple(encoded[i][:prefix]) for (i, _), prefix in batch if prefix}
        total += sum(len(h) for h in heads) + sum(len(encoded[i]) - prefix for (i, _), prefix in batch)
    return total


def run(module, samples: str, shared: bool, models: Path) -> tuple[float, int, dict[str, list[str]]]:
    with tempfile.TemporaryDirectory(prefix="comptrust-prefix-") as work:
        cache = Path(work)
        (cache / "models").symlink_to(models)  # the dequantized embedded model, not re-made
        session = TrustSession(TrustOptions(cache_dir=cache, samples=samples))
        handle = session.handle()
        probes = module.select(load_probe_set(module.NAME).probes, samples, 0)
        requests = module.build_requests(probes)
        backend = handle.engine._backend_now()
        tokens = prompt_tokens(backend, [handle.engine.render(r.messages) for r in requests], shared)
        saved = batching.MIN_SHARED_PREFIX
        batching.MIN_SHARED_PREFIX = saved if shared else 10**9
        try:
            start = time.perf_counter()
            outputs = handle.engine.generate(requests)
            seconds = time.perf_counter() - start
        finally:
            batching.MIN_SHARED_PREFIX = saved
        return seconds, tokens, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default="smoke")
    parser.add_argument("--dims", default=",".join(DIMENSIONS))
    args = parser.parse_args()
    models = default_cache_dir() / "models" if not os.environ.get("COMPTRUST_CACHE_DIR") else (
        Path(os.environ["COMPTRUST_CACHE_DIR"]) / "models"
    )
    models.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs; dense embedded model; tier {args.samples}")
    print(f"{'dimension':28} {'prompts':>7} {'tok shared':>10} {'tok plain':>10} {'s shared':>9} {'s plain':>8} "
          f"{'speed-up':>8} {'answers differ':>14}")
    total = [0.0, 0.0]
    for name in args.dims.split(","):
        module = DIMENSIONS[name]
        s_on, tok_on, out_on = run(module, args.samples, True, models)
        s_off, tok_off, out_off = run(module, args.samples, False, models)
        total[0] += s_on
        total[1] += s_off
        differ = sum(out_on[k] != out_off[k] for k in out_on)
        print(f"{name:28} {len(out_on):7d} {tok_on:10d} {tok_off:10d} {s_on:9.1f} {s_off:8.1f} "
              f"{s_off / s_on:7.2f}x {differ:14d}")
    print(f"{'all':28} {'':7} {'':10} {'':10} {total[0]:9.1f} {total[1]:8.1f} {total[1] / total[0]:7.2f}x")


if __name__ == "__main__":
    main()
