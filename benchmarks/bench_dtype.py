"""bf16 vs fp32 on this CPU: what `--trust-dtype=auto` should pick here.

    python benchmarks/bench_dtype.py [--prompts 32]

Side by side in one process: a matrix product of the embedded model's MLP shape in each dtype
(GFLOPS), then the same greedy generations of the dense embedded model (machine-ethics smoke
prompts) in each dtype (seconds). Prints whether this CPU computes bf16 natively (oneDNN's
check) and what `auto` resolves to.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comptrust_plugin.data.probes import shipped_probe_set  # noqa: E402
from comptrust_plugin.dimensions import machine_ethics  # noqa: E402
from comptrust_plugin.models.loading import cpu_has_fast_bf16, resolve_dtype  # noqa: E402
from comptrust_plugin.options import TrustOptions, default_cache_dir  # noqa: E402
from comptrust_plugin.session import TrustSession  # noqa: E402


def gflops(dtype: torch.dtype, repeats: int = 10) -> float:
    layer = torch.nn.Linear(576, 1536).to(dtype)
    x = torch.randn(2048, 576).to(dtype)
    with torch.inference_mode():
        layer(x)
        start = time.perf_counter()
        for _ in range(repeats):
            layer(x)
        seconds = (time.perf_counter() - start) / repeats
    return 2 * 2048 * 576 * 1536 / seconds / 1e9


def generate(dtype: str, prompts: int) -> tuple[float, list[str]]:
    """Greedy answers straight from the backend (no response cache), timed."""
    handle = TrustSession(TrustOptions(cache_dir=default_cache_dir(), dtype=dtype)).handle()
    backend = handle.engine._backend_now()
    probes = machine_ethics.select(shipped_probe_set("machine_ethics").probes, "smoke", 0)
    requests = machine_ethics.build_requests(probes)[:prompts]
    texts = [handle.engine.render(r.messages) for r in requests]
    out: dict[int, list[str]] = {}
    start = time.perf_counter()
    backend.generate(texts, requests[0].settings, [0] * len(texts), lambda i, t: out.__setitem__(i, t))
    return time.perf_counter() - start, [out[i][0] for i in range(len(texts))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=32)
    args = parser.parse_args()
    print(f"native bf16 (oneDNN): {cpu_has_fast_bf16()}; auto resolves to {resolve_dtype('auto', torch.device('cpu'))}")
    fp32, bf16 = gflops(torch.float32), gflops(torch.bfloat16)
    print(f"matmul 2048x576x1536: fp32 {fp32:.1f} GFLOPS, bf16 {bf16:.1f} GFLOPS, fp32/bf16 {fp32 / bf16:.2f}x")
    t32, a32 = generate("fp32", args.prompts)
    t16, a16 = generate("bf16", args.prompts)
    same = sum(a == b for a, b in zip(a32, a16))
    print(f"{args.prompts} greedy generations: fp32 {t32:.1f} s, bf16 {t16:.1f} s, bf16/fp32 {t16 / t32:.2f}x; "
          f"{same}/{args.prompts} answers identical")


if __name__ == "__main__":
    main()
