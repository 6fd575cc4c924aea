"""What comptrust costs a pytest session that is not a trust run: an unrelated suite, with and without the plugin.

    python benchmarks/bench_plugin_overhead.py [--runs 9] [--tests 30]

Builds a throwaway project of trivial tests and runs `pytest -q` on it in fresh processes,
alternating with and without `-p no:comptrust` (so drift hits both alike), then prints the median
wall time of each, their difference, and the spread of the runs without the plugin (the noise the
difference is measured against). Also prints what importing the plugin module costs on its own.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--tests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        body = "".join(f"def test_{i}():\n    assert {i} == {i}\n\n" for i in range(args.tests))
        (project / "test_unrelated.py").write_text(body)
        pytest_cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        timed(pytest_cmd, project)  # warm the file cache once
        with_plugin, without = [], []
        for _ in range(args.runs):
            with_plugin.append(timed(pytest_cmd, project))
            without.append(timed([*pytest_cmd, "-p", "no:comptrust"], project))
        imports = [
            timed([sys.executable, "-c", "import pytest, comptrust_plugin.plugin"], project) for _ in range(args.runs)
        ]
        bare = [timed([sys.executable, "-c", "import pytest"], project) for _ in range(args.runs)]
    a, b = statistics.median(with_plugin), statistics.median(without)
    spread = statistics.pstdev(without)
    print(f"unrelated suite ({args.tests} trivial tests, {args.runs} runs each, medians):")
    print(f"  with comptrust     {a:.3f} s")
    print(f"  -p no:comptrust    {b:.3f} s")
    print(f"  difference         {a - b:+.3f} s ({100 * (a - b) / b:+.1f}%)")
    print(f"  run-to-run spread without it: {spread:.3f} s")
    print(f"importing the plugin module beside pytest: {statistics.median(imports) - statistics.median(bare):+.3f} s")


if __name__ == "__main__":
    main()
