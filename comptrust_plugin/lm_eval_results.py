"""`--trust-lm-eval=DIR`: a run's scores as lm-evaluation-harness results files, one per model evaluated.

Pipelines that already read lm-eval output (its table maker, its W&B logger, llm-compressor's
recovery checks, leaderboard loaders) read these unchanged. The layout is the one lm-eval's own
`--output_path DIR` writes: `DIR/<model>/results_<time>.json`, the folder being the model's name
made path-safe by lm-eval's rule; the dense model's file sits under the model's name and each
compressed config's under `<model>/<config>` made path-safe (`smollm2-135m__gptq-4`). Readers
take the newest `results_` file of a folder, so a rerun adds files and never overwrites one.

Each trust dimension is a task `comptrust_<dimension>` whose metric `score` (0..100, the report's
own scale, higher is more trustworthy) has the filter `none`. Its `score_stderr` is the paired
bootstrap's standard error of that model's score (the spread of the score over the same
replicates that give the delta's interval); "N/A", as lm-eval writes it, where no bootstrap ran
(--trust-bootstrap=0, or a dense-only profile run). A config's task also carries its `delta`
from dense with the delta's own bootstrap standard error, and both carry the refusal rate.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema

from .data.files import schema
from .dimensions.result import SCORING_REVISION
from .errors import TrustError
from .storage import atomic_write_json

TASK_PREFIX = "comptrust_"
FILTER = "none"  # lm-eval's name for "the metric as computed, no answer filter applied"
NO_STDERR = "N/A"  # what lm-eval writes in a `_stderr` key it could not compute
# Characters lm-eval replaces (runs of them, with "__") to make a model name a folder name.
_UNSAFE = re.compile(r"[\[\]\\/:<>|?*\"]+")


def folder_name(model_name: str) -> str:
    """A model name as lm-eval names its results folder: runs of path-unsafe characters -> "__"."""
    return _UNSAFE.sub("__", model_name)


def task(dimension: str) -> str:
    return TASK_PREFIX + dimension


def _metric(name: str) -> str:
    return f"{name},{FILTER}"


def _stderr(value: float | None) -> float | str:
    return NO_STDERR if value is None else value


def _revision(identity: dict[str, Any]) -> dict[str, str]:
    found = {"model_revision": identity.get("revision"), "model_sha": identity.get("sha256")
             or identity.get("weights_sha256")}
    return {key: str(value) for key, value in found.items() if value}


def _payload(
    report: dict[str, Any], name: str, model_args: str, entries: dict[str, dict[str, Any]], when: float,
) -> dict[str, Any]:
    """One lm-eval results file: `entries` maps a dimension to {score, n, se, refusal, [delta, delta_se, verdict]}."""
    settings = report["settings"]
    version = f"r{SCORING_REVISION}-{settings['variant']}"  # the scoring changes with either
    replicates = [r["interval"]["replicates"] for r in report["results"] if r.get("interval")]
    results, configs, higher_is_better = {}, {}, {}
    for dimension, entry in sorted(entries.items()):
        metrics: dict[str, Any] = {
            "alias": task(dimension), _metric("score"): entry["score"], _metric("score_stderr"): _stderr(entry["se"]),
            _metric("refusal_rate"): entry["refusal"],
        }
        # a refusal is right on some prompts and wrong on others: its rate has no better direction
        better: dict[str, bool | None] = {"score": True, "refusal_rate": None}
        if "delta" in entry:
            metrics[_metric("delta")] = entry["delta"]
            metrics[_metric("delta_stderr")] = _stderr(entry["delta_se"])
            better["delta"] = True
        results[task(dimension)], higher_is_better[task(dimension)] = metrics, better
        configs[task(dimension)] = {
            "task": task(dimension), "output_type": "generate_until", "num_fewshot": 0,
            "metadata": {"version": version, "scoring_variant": settings["variant"],
                         "probe_sha256": entry["probe_sha256"], "comptrust_version": report["comptrust_version"],
                         **({"verdict": entry["verdict"]} if "verdict" in entry else {})},
        }
    tasks = sorted(results)
    samples = settings["samples"]
    return {
        "results": results,
        "group_subtasks": {t: [] for t in tasks},  # no groups: each task stands alone, as lm-eval lists them
        "configs": configs,
        "versions": {t: version for t in tasks},
        "n-shot": {t: 0 for t in tasks},  # a dimension's prompts are its own; no demonstrations are added
        "higher_is_better": higher_is_better,
        "n-samples": {task(d): {"original": e["n"], "effective": e["n"]} for d, e in entries.items()},
        "config": {
            "model": "comptrust", "model_args": model_args, **_revision(report["model"].get("identity") or {}),
            "model_dtype": settings["dtype"], "device": settings["device"],
            "limit": samples if isinstance(samples, int) else None,
            "bootstrap_iters": replicates[0] if replicates else 0, "random_seed": settings["seed"],
        },
        "date": when,
        "model_source": "comptrust",
        "model_name": name,
        "model_name_sanitized": folder_name(name),
    }


def results_files(report: dict[str, Any], when: float | None = None) -> dict[str, dict[str, Any]]:
    """The results files of a report, keyed by folder name: the dense model's, then one per config."""
    when = time.time() if when is None else when
    model = report["model"]["name"]
    dense: dict[str, dict[str, Any]] = {}
    compressed: dict[str, dict[str, dict[str, Any]]] = {}
    for row in sorted(report["results"], key=lambda r: (r["dimension"], r["config"])):
        interval = row.get("interval") or {}
        first = dense.setdefault(row["dimension"], {
            "score": row["dense"]["score"], "n": row["dense"]["n"], "se": None,
            "refusal": row["dense"]["refusal_rate"], "probe_sha256": row["probe_sha256"],
        })
        # the first config with an interval; all configs' bootstraps of a dimension share one seed, so
        # over the same items they draw the same resamples of the dense answers
        if first["se"] is None:
            first["se"] = interval.get("se_dense")
        if row["compressed"] is not None:
            compressed.setdefault(row["config"], {})[row["dimension"]] = {
                "score": row["compressed"]["score"], "n": row["compressed"]["n"],
                "se": interval.get("se_compressed"), "refusal": row["compressed"]["refusal_rate"],
                "probe_sha256": row["probe_sha256"], "delta": row["delta"], "delta_se": interval.get("se"),
                "verdict": row["verdict"],
            }
    files = {folder_name(model): _payload(report, model, f"pretrained={model}", dense, when)}
    for config, entries in sorted(compressed.items()):
        name = f"{model}/{config}"
        if folder_name(name) in files:
            raise TrustError(f"--trust-lm-eval: configs {config!r} and another share the folder {folder_name(name)}")
        files[folder_name(name)] = _payload(report, name, f"pretrained={model},compress={config}", entries, when)
    for payload in files.values():
        jsonschema.validate(payload, schema("lm_eval_results"))
    return files


def write(folder: Path, report: dict[str, Any], when: float | None = None) -> list[Path]:
    """Write the report's results files under `folder` (lm-eval's layout); the paths written."""
    when = time.time() if when is None else when
    stamp = datetime.fromtimestamp(when).isoformat(timespec="microseconds").replace(":", "-")
    written = []
    for name, payload in results_files(report, when).items():
        path = folder / name / f"results_{stamp}.json"
        try:
            atomic_write_json(path, payload)
        except OSError as exc:
            raise TrustError(f"--trust-lm-eval={folder}: cannot write {path.name} ({exc.strerror or exc})") from None
        written.append(path)
    return written
