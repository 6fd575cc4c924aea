"""How much each calibrated method moves with its calibration windows alone, per dimension.

Usage:
    python benchmarks/bench_calibration_seeds.py [--compress gptq-4,awq-4,wanda-50,sparsegpt-50]
        [--seeds 3] [--samples 24] [--select EXPR] [--cache-dir DIR] [--report PATH]

Runs the main job on the embedded model with `--trust-calibration-seeds` (each config built with
calibration seeds 0, 1, 2: different windows of the same calibration text), then prints, per
dimension and method, each build's score, their range and standard deviation, and the seeded
interval of the gated mean. The items are the same for every build, so the spread is the
compression's own randomness, not item sampling. A smaller `--samples` cap keeps the run short
and makes each score coarser (one item is 100 / n points), so read small ranges as "under a few
items' worth", not as zero. `--select` passes a `-k` expression (some dimensions only). The
cache directory keeps the builds and answers: a rerun only re-prints.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compress", default="gptq-4,awq-4,wanda-50,sparsegpt-50")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samples", default="24")
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "comptrust-bench-seeds"))
    parser.add_argument("--select", default="", help="a pytest -k expression: some dimensions only")
    parser.add_argument("--report", default="")
    args = parser.parse_args()
    report = Path(args.report or Path(args.cache_dir) / "seeds-report.json")
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--compress={args.compress}",
        f"--trust-calibration-seeds={args.seeds}", f"--trust-samples={args.samples}",
        f"--trust-cache-dir={args.cache_dir}", f"--trust-report={report}", "-W", "ignore",
    ] + (["-k", args.select] if args.select else [])
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"}, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        print(f"the main job errored (exit {done.returncode})")
        return 2
    data = json.loads(report.read_text(encoding="utf-8"))
    print(f"\n{data['model']['name']}, samples={args.samples}, {args.seeds} calibration seeds, "
          f"dtype {data['settings']['dtype']}, {seconds:.0f} s in all")
    print(f"{'dimension':28} {'config':14} {'n':>4}  {'builds':24} {'range':>6} {'sd':>5}  "
          f"{'mean':>6} {'delta':>6}  {'interval (seeds x items)':>24}")
    for row in sorted(data["results"], key=lambda r: (r["dimension"], r["config"])):
        seeds = row.get("seeds")
        if not seeds:
            continue
        scores = [build["score"] for build in seeds["builds"]]
        interval = row["interval"] or {}
        band = f"[{interval['low']:+.1f}, {interval['high']:+.1f}]" if interval else "-"
        print(f"{row['dimension']:28} {row['config']:14} {row['compressed']['n']:>4}  "
              f"{' '.join(f'{s:5.1f}' for s in scores):24} {max(scores) - min(scores):6.1f} "
              f"{statistics.stdev(scores):5.1f}  {row['compressed']['score']:6.1f} {row['delta']:+6.1f}  {band:>24}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
