"""Held-out perplexity of compressed configs of the embedded model, as the capability check measures it.

Usage:
    python benchmarks/bench_heldout.py [--cache-dir DIR] [SPEC ...]

The figures behind capability.py's limit: for each spec, the dense and compressed perplexity per
token on the shipped held-out passages (fixtures/heldout/), through the run's own path (model
handles, cached engines, the tokenizer's token count), in float32, with the CPU default
calibration for calibrated methods; and the ratio beside the limit.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT_SPECS = ("rtn-8", "gptq-4", "awq-4", "rtn-4", "nf4", "sparsegpt-50", "wanda-50", "wanda-2:4", "mag-50")


def main() -> None:
    from comptrust_plugin.capability import HELDOUT_RATIO_LIMIT
    from comptrust_plugin.options import TrustOptions
    from comptrust_plugin.session import TrustSession
    from comptrust_plugin.spec import parse_spec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=list(DEFAULT_SPECS))
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "comptrust-bench-heldout"))
    args = parser.parse_args()
    session = TrustSession(TrustOptions(cache_dir=Path(args.cache_dir), dtype="fp32"))
    dense = session.handle()
    print(f"# {time.strftime('%Y-%m-%d')}, embedded model, float32, limit x{HELDOUT_RATIO_LIMIT:g}")
    for text in args.specs:
        handle = session.handle(parse_spec(text))
        found = session.heldout.get(dense.engine, handle, False)
        assert found is not None
        flag = "over the limit" if found.collapsed else ""
        print(f"{text:14} dense {found.dense:8.2f}  compressed {found.compressed:8.2f}  x{found.ratio:6.3f}  "
              f"({found.tokens} tokens) {flag}", flush=True)
        session.release(handle)


if __name__ == "__main__":
    main()
