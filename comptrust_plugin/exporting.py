"""Shipping what was gated: `--trust-export=DIR` and `comptrust export`.

`--trust-export=DIR` writes, after a run, each compressed config it gated to `DIR/<config id>/`
(compress/export.py: compressed-tensors for quantized, fp8 and int8-w8a8 configs, bitsandbytes'
4-bit format for nf4 / fp4, dense safetensors for pruned ones) and puts that config's verdicts in
the folder's model card and comptrust.json. `comptrust export` writes one config without gating
it. Both take the weights from the artifact store (built there when absent; cheap methods are
compressed again, nf4 / fp4 quantized by bitsandbytes from the dense weights, checked equal to
the gated ones), so the checkpoint is the very model the answers came from.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import TrustError
from .options import TrustOptions
from .spec import SpecError, parse_spec, safe_name


def export_gated(options: TrustOptions, folder: Path, report: dict[str, Any]) -> list[Path]:
    """Every compressed config of `report` made by comptrust (not `hub:` checkpoints, which ship
    already), written under `folder` with its verdicts; the folders written."""
    from .compress.export import write_verdicts
    from .handles import ModelHandles

    by_config: dict[str, list[dict[str, Any]]] = {}
    for row in report["results"]:
        if row.get("compressed") is not None:
            by_config.setdefault(row["config"], []).append(row)
    handles = ModelHandles(options, options.validate(), options.cache_dir)
    written = []
    for spec in options.specs:
        rows = by_config.get(spec.canonical)
        if rows is None or spec.is_dense or spec.method == "hub":
            continue
        target = handles.export(spec, folder / safe_name(spec.canonical))
        write_verdicts(target, [_verdict(row) for row in sorted(rows, key=lambda r: r["dimension"])])
        written.append(target)
    return written


def _verdict(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "dimension": row["dimension"], "dense": row["dense"]["score"], "compressed": row["compressed"]["score"],
        "delta": row["delta"], "interval": row.get("interval"), "verdict": row["verdict"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """`comptrust export --model M --compress SPEC DIR`: one config as a checkpoint, not gated."""
    parser = argparse.ArgumentParser(prog="comptrust export", description=main.__doc__)
    parser.add_argument("--model", default=TrustOptions.model, help="model name, hub id or folder (as --trust-model)")
    parser.add_argument("--compress", required=True, help="one compression spec, e.g. gptq-4-g64 or wanda-2:4")
    parser.add_argument("--dtype", default="auto", help="auto, bfloat16, float16 or float32 (as --trust-dtype)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (as --trust-device)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="as --trust-cache-dir")
    parser.add_argument("folder", type=Path, help="where the checkpoint is written (a new or empty folder)")
    args = parser.parse_args(argv)
    try:
        spec = parse_spec(args.compress)
        extra = {"cache_dir": args.cache_dir} if args.cache_dir is not None else {}
        options = TrustOptions(model=args.model, specs=(spec,), dtype=args.dtype, device=args.device, **extra)
        from .handles import ModelHandles

        handles = ModelHandles(options, options.validate(), options.cache_dir)
        written = handles.export(spec, args.folder)
    except (TrustError, SpecError) as exc:
        print(f"comptrust export: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {spec.canonical} of {args.model} to {written}")
    return 0
