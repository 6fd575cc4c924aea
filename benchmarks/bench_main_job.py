"""Time the main job (`pytest --compress=SPEC`) cold, warm-model and fully cached, side by side.

    python benchmarks/bench_main_job.py [--compress mag-50] [-k machine_ethics]

Three runs of the same command in one go, each in a fresh process:
  1. cold:        empty cache folder (includes the one-time GGUF dequantization)
  2. cold answers: dequantized model cached, no cached answers (the usual first CI run)
  3. cached:      everything cached (must not load any model)
  4. with --second SPEC: the same cache, `--compress=SPEC_1,SPEC_2`: the added config must cost only
     its own evaluation (dense answers and the first config come from the cache)
Prints wall times, peak RSS of the pytest process, and the ratios between the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(cache: Path, compress: str, select: str | None, report: Path) -> tuple[float, float, int]:
    pytest_args = [
        "-q", "-p", "no:cacheprovider", f"--compress={compress}", f"--trust-cache-dir={cache}",
        f"--trust-report={report}", *(["-k", select] if select else []),
    ]
    # pytest runs in a fresh interpreter that reports its own peak RSS on exit
    wrapper = (
        "import resource, sys, pytest\n"
        f"rc = pytest.main({pytest_args!r})\n"
        "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(int(rc))\n"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak_kb = [int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB")]
    peak_mb = peak_kb[-1] / 1024 if peak_kb else float("nan")
    if done.returncode not in (0, 1):
        print(done.stdout[-3000:], done.stderr[-3000:])
        raise SystemExit(f"pytest exited {done.returncode}")
    return seconds, peak_mb, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compress", default="mag-50")
    parser.add_argument("-k", dest="select", default=None, help="pytest -k expression (dimension)")
    parser.add_argument("--second", default=None, help="a config to add to the warm run (run 4)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="comptrust-bench-"))
    cache = work / "cache"
    rows = []
    try:
        t_cold, mem_cold, rc = run(cache, args.compress, args.select, work / "cold.json")
        rows.append(("cold (empty cache)", t_cold, mem_cold, rc))
        (cache / "responses.sqlite3").unlink()
        for suffix in ("-wal", "-shm"):
            Path(str(cache / "responses.sqlite3") + suffix).unlink(missing_ok=True)
        t_warm, mem_warm, rc = run(cache, args.compress, args.select, work / "warm.json")
        rows.append(("cold answers (model cached)", t_warm, mem_warm, rc))
        t_cached, mem_cached, rc = run(cache, args.compress, args.select, work / "cached.json")
        rows.append(("fully cached", t_cached, mem_cached, rc))
        cached_report = json.loads((work / "cached.json").read_text())
        warm_report = json.loads((work / "warm.json").read_text())
        if args.second:
            both = f"{args.compress},{args.second}"
            t_second, mem_second, rc = run(cache, both, args.select, work / "second.json")
            rows.append((f"+ {args.second} on the warm cache", t_second, mem_second, rc))
            second_report = json.loads((work / "second.json").read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"main job: pytest --compress={args.compress}" + (f" -k {args.select}" if args.select else ""))
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    print(f"{'run':32} {'seconds':>8} {'peak RSS MB':>12} {'exit':>5}")
    for name, seconds, mem, rc in rows:
        print(f"{name:32} {seconds:8.1f} {mem:12.0f} {rc:5d}")
    print(f"ratio cold / fully cached:          {t_cold / t_cached:6.1f}x")
    print(f"ratio cold answers / fully cached:  {t_warm / t_cached:6.1f}x")
    loaded = [name for name, s in cached_report["engine"].items() if s["model_loaded"]]
    print(f"models loaded in the fully cached run: {loaded or 'none'}")
    print("per dimension (cold answers run, dense + compressed):")
    for row in warm_report["results"]:
        print(f"  {row['dimension']:28} {row['config']:12} {row['seconds']:7.1f} s  verdict {row['verdict']}"
              f"  delta {row['delta']:+.1f}  flips {row['flip_rate']:.1f}%")
    if args.second:
        engine = second_report["engine"]
        print(f"adding {args.second}: {t_second:.1f} s wall vs {t_cached:.1f} s fully cached; answers computed per "
              "config: " + ", ".join(f"{name} {stats['computed']}" for name, stats in engine.items())
              + f"; the added config's own evaluation {engine[args.second]['seconds']:.1f} s")
    print("targets (issue 9): cold <= 300 s, fully cached <= 15 s, peak memory <= 4 GB; an added config costs "
          "only its own evaluation")


if __name__ == "__main__":
    main()
