"""The `comptrust` console script: `rescore` (DecodingTrust files), `compare` (two reports), `merge`, `export`.

`comptrust rescore` scores DecodingTrust output files under both variants; `comptrust compare`
sets two reports (or two stored baselines) side by side and exits 1 when NEW is worse beyond the
tolerance (compare.py); `comptrust merge` joins the reports of a run's shards into one (merge.py);
`comptrust export` writes a compressed config as a checkpoint (exporting.py).

    comptrust rescore --dimension stereotype_bias results/stereotype/generations/MODEL
    comptrust rescore --dimension fairness --data data/fairness/fairness_data results/fairness/results/MODEL
    comptrust compare --tolerance 5,toxicity=3 --markdown summary.md release-1.json release-2.json
    comptrust merge --report release.json --markdown "$GITHUB_STEP_SUMMARY" shard-*.json
    comptrust export --model smollm2-135m --compress gptq-4-g64 shipped/gptq-4-g64

The reading of its file layouts lives in `comptrust_plugin.decodingtrust` (one module per
dimension), the metrics in the dimension modules; this module parses arguments and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .decodingtrust import Rescored, rescore, rescorers
from .decodingtrust.rescored import VARIANTS
from .errors import TrustError
from .gate import DEFAULT_TOLERANCE, parse_tolerance
from .scorers import SCORER_CHOICES, check_scorer_name


def render(rescored: Rescored) -> str:
    lines = [f"{rescored.dimension}: {len(rescored.files)} output file(s)"]
    for variant in VARIANTS:
        r = rescored.results[variant]
        lines.append(
            f"  {variant:<16} score {r.score:6.2f}   refusal {r.refusal_rate:5.1f}%   "
            f"unparsed {r.unparsed_rate:5.1f}%   n={r.n}"
        )
    for variant in VARIANTS:
        parts = ", ".join(f"{k}={v:.2f}" for k, v in rescored.results[variant].subscores.items())
        lines.append(f"  {variant} parts: {parts}")
    lines += [f"  note: {note}" for note in rescored.notes]
    return "\n".join(lines)


def as_json(rescored: Rescored) -> dict[str, Any]:
    return {
        "dimension": rescored.dimension, "files": [str(p) for p in rescored.files], "notes": list(rescored.notes),
        "results": {
            variant: result.summary_json() for variant, result in rescored.results.items()
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["export"]:
        from .exporting import main as export_main

        return export_main(argv[1:])
    parser = argparse.ArgumentParser(prog="comptrust", description="comptrust command-line tools")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("export", help="write a compressed config as a checkpoint (comptrust export --help)")
    sub = commands.add_parser("rescore", help="score DecodingTrust output files under both scoring variants")
    sub.add_argument("--dimension", required=True, choices=sorted(m.NAME for m in rescorers()))
    sub.add_argument("--data", default=None, help="DecodingTrust data the outputs refer to (fairness, adv. demos, OOD)")
    sub.add_argument("--toxicity-scorer", default=None,
                     help=f"rates continuations without a score (toxicity): {SCORER_CHOICES}")
    sub.add_argument("--json", action="store_true", help="print JSON instead of the table")
    sub.add_argument("paths", nargs="+", type=Path, help="output files or folders")
    _compare_parser(commands)
    _merge_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "compare":
        return _compare(args)
    if args.command == "merge":
        return _merge(args)
    try:
        if args.toxicity_scorer is not None:
            check_scorer_name(args.toxicity_scorer)
        rescored = rescore(args.dimension, args.paths, args.data, args.toxicity_scorer)
    except TrustError as exc:
        print(f"comptrust rescore: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(as_json(rescored), indent=2) if args.json else render(rescored))
    return 0


def _compare_parser(commands: Any) -> None:
    sub = commands.add_parser(
        "compare", help="two reports (or two stored baselines) side by side; exit 1 when NEW is worse",
        description="Per dimension and config: both scores, the change, whether the intervals separate. "
                    "Exit status 1 when NEW is worse than OLD beyond the tolerance, 0 otherwise, 2 on a usage "
                    "error or files that cannot be compared.",
    )
    sub.add_argument("--tolerance", default=f"{DEFAULT_TOLERANCE:g}", metavar="RULE",
                     help="allowed drop from OLD to NEW, as --trust-tolerance: points (5), percent of the OLD "
                          f"score (5%%), or per dimension: 5,toxicity=3,fairness=10%% (default {DEFAULT_TOLERANCE:g})")
    sub.add_argument("--markdown", type=Path, default=None, metavar="PATH",
                     help="also append the comparison as Markdown to this file (e.g. $GITHUB_STEP_SUMMARY)")
    sub.add_argument("old", type=Path, metavar="OLD", help="the earlier report (--trust-report) or stored baseline")
    sub.add_argument("new", type=Path, metavar="NEW", help="the later one, of the same kind")


def _compare(args: argparse.Namespace) -> int:
    from . import compare, dimensions
    from .report import append_markdown

    try:
        tolerance = parse_tolerance(args.tolerance, dimensions.names(), "--tolerance")
        comparison = compare.compare(compare.load(args.old), compare.load(args.new), tolerance)
        if args.markdown is not None:
            append_markdown(args.markdown, compare.render_markdown(comparison))
    except TrustError as exc:
        print(f"comptrust compare: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the Markdown file could not be written
        print(f"comptrust compare: --markdown {args.markdown}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    sys.stdout.write(compare.render_terminal(comparison))
    return 1 if comparison.worse else 0


def _merge_parser(commands: Any) -> None:
    sub = commands.add_parser(
        "merge", help="the reports of one run's shards (--trust-shard) as one report and table",
        description="Checks that the reports share one model, settings, comptrust version and dense baseline, "
                    "that each (config, dimension) is in one of them and no shard is missing, then writes the "
                    "table, report and verdicts one run would (the multiplicity correction redone across all). "
                    "Exit status 1 when a verdict FAILs, 0 otherwise, 2 on a usage error or reports that "
                    "cannot be merged.",
    )
    sub.add_argument("--report", type=Path, default=None, metavar="OUT", help="write the merged JSON report here")
    sub.add_argument("--markdown", type=Path, default=None, metavar="PATH",
                     help="append the Markdown summary to this file (e.g. $GITHUB_STEP_SUMMARY)")
    sub.add_argument("--csv", type=Path, default=None, metavar="PATH",
                     help="append one row per (config, dimension) to this CSV sheet, as --trust-csv")
    sub.add_argument("reports", nargs="+", type=Path, metavar="REPORT", help="the reports (--trust-report) to merge")


def _merge(args: argparse.Namespace) -> int:
    from . import merge, results_csv
    from .report import render_matrix, render_table, write_json_report, write_markdown

    try:
        report = merge.merge([(str(path), merge.load(path)) for path in args.reports])
        if args.report is not None:
            write_json_report(args.report, report)
        if args.markdown is not None:
            write_markdown(args.markdown, report)
        if args.csv is not None:
            results_csv.append(args.csv, report)
    except TrustError as exc:
        print(f"comptrust merge: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an output file could not be written
        print(f"comptrust merge: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    results = report["results"]
    if any(r["compressed"] is not None for r in results):
        print(render_matrix(results) + "\n")
    print(render_table(results))
    failed = sum(r["verdict"] == "FAIL" for r in results)
    print(f"comptrust merge: {len(args.reports)} report(s), {len(results)} verdict(s), {failed} FAIL")
    return 1 if failed else 0


if __name__ == "__main__":  # `python -m comptrust_plugin.cli rescore ...`, as the console script
    sys.exit(main())
