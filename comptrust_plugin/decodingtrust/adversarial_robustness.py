"""Adversarial robustness on DecodingTrust: its AdvGLUE++ rows as probes, and its result files re-scored."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data.files import fixtures_dir
from ..dimensions import adversarial_robustness
from ..dimensions.probe_set import ProbeSet
from ..dimensions.result import DimensionResult, ItemOutcome
from ..errors import TrustError, one_line
from .files import load_output_json, local_probe_set, output_files, read_json_file, reply_text, require_files
from .rescored import VARIANTS, Rescored

NAME = adversarial_robustness.NAME
HUB_CONFIG = None  # a local copy only: the hub config's row layout is not confirmed

# ------------------------------------------------------------------------------ its data
# Its scored runs: data/adv-glue-plus-plus/data/<source>.json for three source models, tasks
# sst2, qqp, mnli (its other tasks, mnli-mm/qnli/rte, are not run by its configs; we have no
# instructions for them). A file is {task: [row, ...]}; a row holds the task's fields
# (perturbed), `label` (GLUE's index), often `method` and `original_<field>` (the clean text of
# the one field the attack changed). A SemAttack row is shown as its `sentence` alone.
ADVGLUE_DATA = "adv-glue-plus-plus/data"
ADVGLUE_SOURCES = ("alpaca", "vicuna", "stable-vicuna")
ADVGLUE_TASKS = ("sst2", "qqp", "mnli")
SEMATTACK = "semattack"


def advglue_item(where: str, row: Any, source: str, task: str, index: int) -> adversarial_robustness.Item:
    ar = adversarial_robustness
    if not isinstance(row, dict):
        raise TrustError(f"{where}: expected an object")
    labels = ar.TASKS[task].labels
    try:
        label = int(str(row.get("label")).strip())
    except ValueError:
        label = -1
    if not 0 <= label < len(labels):
        raise TrustError(f"{where}: label {one_line(row.get('label'))!r} is not 0..{len(labels) - 1}")
    method = str(row.get("method") or "")
    if method == SEMATTACK:
        if not isinstance(row.get("sentence"), str):
            raise TrustError(f"{where}: a semattack row needs its rendered `sentence`")
        perturbed: dict[str, str] = {ar.PRERENDERED: row["sentence"]}
        original = row.get("original_sentence")
        clean: dict[str, str] | None = {ar.PRERENDERED: original} if isinstance(original, str) else None
    else:
        fields = ar.TASKS[task].fields
        missing = [f for f in fields if not isinstance(row.get(f), str)]
        if missing:
            raise TrustError(f"{where}: missing text field(s) {', '.join(missing)} for {task}")
        perturbed = {f: row[f] for f in fields}
        originals = {f: row[f"original_{f}"] for f in fields if isinstance(row.get(f"original_{f}"), str)}
        clean = {**perturbed, **originals} if originals else None
    return ar.Item(f"{source}-{task}-{index:05d}", task, label, method or "advglue++", clean, perturbed, source)


def advglue_local(root: Path) -> tuple[adversarial_robustness.AdvProbes, list[Path]]:
    """The three source files (its score averages over all of them; a missing one stops the
    run, naming it); demos are our shipped ones (its demos live in its code, not its data)."""
    paths = require_files(root, [f"{ADVGLUE_DATA}/{s}.json" for s in ADVGLUE_SOURCES])
    items = []
    for source, path in zip(ADVGLUE_SOURCES, paths):
        content = read_json_file(path)
        if not isinstance(content, dict):
            raise TrustError(f"{path}: expected {{task: [rows]}}")
        for task in ADVGLUE_TASKS:
            rows = content.get(task)
            if not isinstance(rows, list) or not rows:
                raise TrustError(f"{path}: no {task} rows (expected {{{', '.join(ADVGLUE_TASKS)}: [rows]}})")
            items += [advglue_item(f"{path}: {task} row {i}", r, source, task, i) for i, r in enumerate(rows)]
    folder = fixtures_dir() / adversarial_robustness.NAME
    shipped: adversarial_robustness.AdvProbes = adversarial_robustness.load_probes(folder).probes
    return adversarial_robustness.AdvProbes(tuple(items), shipped.demos), paths


def load_local(root: Path) -> ProbeSet:
    probes, paths = advglue_local(root)
    return local_probe_set(NAME, probes, root, paths)


# ----------------------------------------------------------------------- its output files
_ADVGLUE_FILE = re.compile(r"^(alpaca|vicuna|stable-vicuna)(-demo)?\.json$")


def rescore(paths: Sequence[Path], data: Path | None = None) -> Rescored:
    """AdvGLUE++ result files `<source model>[-demo].json` ({task: {responses, labels, ...}}).
    Score: mean over (source model, task) rows of the accuracy, as the benchmark's adv_stats.
    Predictions are re-derived from the responses by its substring rule (both variants). Where a
    folder holds both files of a source model, only `-demo` is read, as its adv_stats chooses."""
    found = output_files(paths, "*.json", lambda p: bool(_ADVGLUE_FILE.match(p.name)))
    files = [p for p in found if p.name.endswith("-demo.json") or p.with_name(f"{p.stem}-demo.json") not in found]
    ar = adversarial_robustness
    outcomes: dict[str, list[ItemOutcome]] = {v: [] for v in VARIANTS}
    for path in files:
        match = _ADVGLUE_FILE.match(path.name)
        if match is None:
            raise TrustError(f"{path}: expected <alpaca|vicuna|stable-vicuna>[-demo].json")
        source, content = match.group(1), load_output_json(path)
        if not isinstance(content, dict):
            raise TrustError(f"{path}: expected {{task: {{responses, labels}}}}")
        for task, result in content.items():
            if task not in ar.DT_LABELS:
                raise TrustError(f"{path}: unknown task {one_line(task)!r} (known: {', '.join(ar.DT_LABELS)})")
            if not isinstance(result, dict) or not isinstance(result.get("responses"), list) or not isinstance(
                result.get("labels"), list
            ) or len(result["responses"]) != len(result["labels"]):
                raise TrustError(f"{path}: {task} needs responses and labels lists of one length")
            labels = ar.DT_LABELS[task]
            for index, (response, label) in enumerate(zip(result["responses"], result["labels"])):
                where = f"{path} {task} item {index}"
                if not isinstance(label, int) or not 0 <= label < len(labels):
                    raise TrustError(f"{where}: label {one_line(label)!r} is not 0..{len(labels) - 1}")
                text = reply_text(response, where)
                key, subset = f"{source}/{task}/{index}", f"{source}/{task}"
                answer = ar.read_answer(text, labels)  # the patch reads as main does
                for variant in VARIANTS:
                    outcomes[variant].append(ItemOutcome(key, subset, answer, float(answer == labels[label]), text))
    results = {}
    for variant in VARIANTS:
        main, rows = ar.mean_over_subsets(outcomes[variant])
        results[variant] = DimensionResult.from_outcomes(ar.NAME, variant, main, rows, outcomes[variant])
    passed = [p.name for p in found if p not in files]
    notes = (f"read the -demo file instead of {', '.join(passed)}, as its statistics do",) if passed else ()
    return Rescored(ar.NAME, tuple(files), results, notes)
