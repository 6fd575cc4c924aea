"""GPU check (not a timed benchmark): do the HF and vLLM backends give the same answers and scores?

Needs a CUDA GPU and `pip install 'comptrust[vllm]'`. Runs a few dimensions on the embedded model
(dense, and one stored compressed config) through both backends, each with its own fresh cache,
and prints per dimension and config: greedy answer agreement, both scores, both run times.
Exit status 1 when greedy agreement falls below --min-agreement (default 0.95: bf16 kernels of
the two libraries differ, so a few near-tie tokens may flip) or a score differs by more than
--max-score-diff points.

    python benchmarks/gpu_check_vllm.py [--model smollm2-135m] [--compress wanda-50] [--samples 100]
    python benchmarks/gpu_check_vllm.py --compress gptq-4-g64   # stored packed: vLLM's int kernels

A quantized config whose group size divides every layer (g64 on SmolLM2) is stored packed in
compressed-tensors' format (compress/export.py), so vLLM serves it with its own integer kernels
while the HF backend decompresses it: the check then compares production kernels with ours.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from comptrust_plugin.dimensions import benign_utility, machine_ethics, stereotype_bias
from comptrust_plugin.options import TrustOptions
from comptrust_plugin.session import TrustSession
from comptrust_plugin.spec import DENSE, parse_specs

DIMENSIONS = (machine_ethics, stereotype_bias, benign_utility)


def run(backend: str, args: argparse.Namespace, cache: Path) -> dict[tuple[str, str], tuple[object, float, dict]]:
    """(dimension, config) -> (DimensionResult, seconds, answers) for one backend."""
    specs = tuple(parse_specs([args.compress])) if args.compress else ()
    session = TrustSession(TrustOptions(
        model=args.model, specs=specs, samples=args.samples, device=args.device, dtype=args.dtype,
        cache_dir=cache, backend=backend,
    ))
    results = {}
    for spec in (DENSE, *specs):
        handle = session.handle(spec)
        for dimension in DIMENSIONS:
            start = time.perf_counter()
            result = session.evaluate(dimension, handle)
            answers = handle.engine.generate(dimension.build_requests(session.selected(dimension)))
            results[(dimension.NAME, handle.config)] = (result, time.perf_counter() - start, answers)
        session.release(handle)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--compress", default="wanda-50")
    parser.add_argument("--samples", default=100, type=int)
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--device", default="cuda", help="cuda (vLLM needs it); cpu only checks the HF half runs")
    parser.add_argument("--min-agreement", default=0.95, type=float)
    parser.add_argument("--max-score-diff", default=2.0, type=float)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as hf_cache, tempfile.TemporaryDirectory() as vllm_cache:
        hf = run("hf", args, Path(hf_cache))
        vllm = run("vllm", args, Path(vllm_cache))
    ok = True
    print(f"{'dimension':22} {'config':12} {'agree':>6} {'hf':>7} {'vllm':>7} {'hf s':>6} {'vllm s':>7}")
    for key, (hf_result, hf_seconds, hf_answers) in hf.items():
        vllm_result, vllm_seconds, vllm_answers = vllm[key]
        same = sum(hf_answers[k] == vllm_answers.get(k) for k in hf_answers) / max(1, len(hf_answers))
        diff = abs(hf_result.score - vllm_result.score)  # type: ignore[attr-defined]
        good = same >= args.min_agreement and diff <= args.max_score_diff
        ok = ok and good
        print(
            f"{key[0]:22} {key[1]:12} {same:6.1%} {hf_result.score:7.2f} {vllm_result.score:7.2f} "  # type: ignore[attr-defined]
            f"{hf_seconds:6.1f} {vllm_seconds:7.1f}{'' if good else '  <-- differs'}"
        )
    print("OK: HF and vLLM agree" if ok else "FAIL: HF and vLLM differ beyond the limits above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
