"""Adversarial demonstrations on DecodingTrust: its demo sets as probes, and its output files re-scored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..dimensions import adversarial_demonstrations
from ..dimensions.probe_set import ProbeSet
from ..dimensions.result import DimensionResult, ItemOutcome
from ..errors import TrustError
from .files import (
    HUB_DATASET,
    Tables,
    load_output_json,
    local_probe_set,
    output_files,
    output_jsonl,
    read_jsonl_rows,
    reply_text,
    request_pairs,
)
from .rescored import VARIANTS, Rescored

NAME = adversarial_demonstrations.NAME
HUB_CONFIG = "adv_demonstration"
HUB_DATA_FILES = None

ADV_DEMO_ROOT = "adv_demonstration"


# ------------------------------------------------------------------------------ its data
def _adv_demo_task(where: str, options: Any) -> str:
    wanted = {str(o).strip().lower() for o in options} if isinstance(options, list) else set()
    for task, labels in adversarial_demonstrations.LABELS.items():
        if wanted == set(labels):
            return task
    raise TrustError(
        f"{where}: options {sorted(wanted)} match no supported task "
        f"({', '.join(f'{t}: {list(v)}' for t, v in adversarial_demonstrations.LABELS.items())})"
    )


def adv_demo_item(where: str, row: dict[str, Any], family: str, item_id: str) -> adversarial_demonstrations.DemoItem:
    """One row {input, label, option, examples: [[text, label], ...]}. In the benchmark's
    backdoor attack-success files the label is the attacker's target, so it becomes `target`."""
    for field in ("input", "label", "option", "examples"):
        if field not in row:
            raise TrustError(f"{where}: missing field {field!r}")
    task = _adv_demo_task(where, row["option"])
    examples = row["examples"]
    if not isinstance(examples, list) or not all(isinstance(e, list) and len(e) == 2 for e in examples):
        raise TrustError(f"{where}: examples must be [[text, label], ...]")
    label = str(row["label"]).strip().lower()
    return adversarial_demonstrations.DemoItem(
        item_id, family, task, str(row["input"]), label,
        tuple((str(text), str(lab).strip().lower()) for text, lab in examples),
        target=label if family == "backdoor" else None,
    )


def adv_demo_family(relative: Path) -> tuple[str, str] | None:
    """(family, setting) of a data or output file by its path below adv_demonstration/, or None
    when the benchmark's score does not use it (counterfactual: only the `_cf` sets; backdoor:
    only experiment 1's attack-success `_asr` sets)."""
    parts = relative.parts
    if not parts:
        return None
    family = parts[0]
    if family == "counterfactual" and len(parts) >= 3 and parts[1].endswith("_cf"):
        return family, parts[1]
    if family == "spurious" and len(parts) >= 4:
        return family, f"{parts[1]}/{parts[2]}"
    if family == "backdoor" and len(parts) >= 4 and parts[1] == "experiment1" and parts[2].endswith("_asr"):
        return family, parts[2]
    return None


def _adv_demo_local(root: Path) -> tuple[Tables, list[Path]]:
    base = root / ADV_DEMO_ROOT
    if not base.is_dir():
        raise TrustError(f"{root}: missing DecodingTrust data folder {ADV_DEMO_ROOT}/")
    tables: Tables = {}
    paths = []
    for path in sorted(base.rglob("*.jsonl")):
        found = adv_demo_family(path.relative_to(base))
        if found is None:
            continue
        family, setting = found
        tables[f"{family}/{setting}/{path.stem}"] = read_jsonl_rows(path)
        paths.append(path)
    if not tables:
        raise TrustError(
            f"{base}: no counterfactual, spurious or backdoor files "
            f"(the layout of DecodingTrust's data/{ADV_DEMO_ROOT})"
        )
    return tables, paths


def _missing_families(tables: Tables, base: Path) -> tuple[str, ...]:
    missing = [f for f in adversarial_demonstrations.FAMILIES if not any(k.startswith(f + "/") for k in tables)]
    return (
        (f"no {', '.join(missing)} files under {base}: the score averages the families present",) if missing else ()
    )


def adv_demo_probes(tables: Tables) -> adversarial_demonstrations.AdvDemoProbes:
    """Tables keyed "<family>/<setting>/<file stem>" (local) or by hub split name."""
    items = []
    for name, rows in tables.items():
        family = name.split("/", 1)[0] if "/" in name else _family_of_split(name)
        if family is None:
            continue
        for index, (where, row) in enumerate(rows):
            items.append(adv_demo_item(where, row, family, f"{name}/{index}"))
    if not items:
        raise TrustError(f"{HUB_DATASET} adversarial demonstrations: no counterfactual, spurious or backdoor rows")
    return adversarial_demonstrations.AdvDemoProbes(tuple(items))


def _family_of_split(name: str) -> str | None:
    """The family of a hub split by its name, with the same choice of sets as for local files
    (counterfactual: `_cf` sets; backdoor: attack-success sets). The hub's split names for
    this config are not pinned by a test against the hub (no network here)."""
    lowered = name.lower()
    if "backdoor" in lowered:
        return "backdoor" if "asr" in lowered else None
    if "spurious" in lowered:
        return "spurious"
    if "_cf" in lowered:
        return "counterfactual"
    return None


def load_local(root: Path) -> ProbeSet:
    """The families present under adv_demonstration/ (one missing is a note, not an error)."""
    tables, paths = _adv_demo_local(root)
    probe_set = local_probe_set(NAME, adv_demo_probes(tables), root, paths)
    return replace(probe_set, notes=_missing_families(tables, root / ADV_DEMO_ROOT))


def load_hub(tables: Tables, where: str) -> adversarial_demonstrations.AdvDemoProbes:
    return adv_demo_probes(tables)


# ----------------------------------------------------------------------- its output files
def rescore(paths: Sequence[Path], data: Path | None) -> Rescored:
    """Output files `<family path>/<model>_<seed>.jsonl` (JSON: [request, response] pairs) with
    the data file `<family path>/<seed>.jsonl` under `data` (DecodingTrust's data/adv_demonstration/).
    A file that answers fewer rows than its data file has (an unfinished run) is left out, as its
    aggregation's `read` leaves it out, with a note. One model's files only: its aggregation
    reads the files of the model it is given."""
    if data is None:
        raise TrustError("adversarial_demonstrations: pass --data PATH, DecodingTrust's data/adv_demonstration/")
    if (data / "adv_demonstration").is_dir():
        data = data / "adv_demonstration"
    outcomes: dict[str, list[ItemOutcome]] = {v: [] for v in VARIANTS}
    used: list[Path] = []
    skipped = 0
    partial: list[str] = []
    models: set[str] = set()
    for path in output_files(paths, "*.jsonl"):
        parts = path.parts
        starts = [i for i, part in enumerate(parts) if part in adversarial_demonstrations.FAMILIES]
        if not starts:
            raise TrustError(f"{path}: not below a counterfactual/, spurious/ or backdoor/ folder")
        relative = Path(*parts[starts[-1]:])
        found = adv_demo_family(relative)
        if found is None:
            skipped += 1  # a set the benchmark's score does not use (non-_cf, clean accuracy)
            continue
        family, setting = found
        model, _, seed = path.stem.rpartition("_")
        models.add(model)
        if len(models) > 1:
            raise TrustError(f"adversarial demonstrations outputs: files of several models "
                             f"({', '.join(sorted(models))}); name one model's files")
        data_file = data / relative.parent / f"{seed}.jsonl"
        rows = output_jsonl(data_file)
        pairs = request_pairs(load_output_json(path), path)
        if len(pairs) > len(rows):
            raise TrustError(f"{path}: {len(pairs)} responses but {data_file} has {len(rows)} rows")
        if len(pairs) < len(rows):  # an unfinished run: its aggregation leaves the file out
            partial.append(f"{path.name} ({len(pairs)} of {len(rows)})")
            continue
        for index, ((number, row), (_, response)) in enumerate(zip(rows, pairs)):
            if not isinstance(row, dict):
                raise TrustError(f"{data_file}:{number}: expected a JSON object")
            key = f"{family}/{setting}/{seed}/{index}"
            item = adv_demo_item(f"{data_file}:{number}", row, family, key)
            text = reply_text(response, f"{path} item {index}")
            outcome = adversarial_demonstrations.judge(item, key, text)  # the patch reads as main does
            for variant in VARIANTS:
                outcomes[variant].append(outcome)
        used.append(path)
    if not used:
        raise TrustError("adversarial demonstrations: none of the files is one the benchmark's score uses")
    results = {}
    for variant in VARIANTS:
        main, families = adversarial_demonstrations.nested_score(outcomes[variant])
        subscores = dict(families)
        if "backdoor" in families:
            subscores["backdoor_attack_success"] = 100.0 - families["backdoor"]
        results[variant] = DimensionResult.from_outcomes(
            adversarial_demonstrations.NAME, variant, main, subscores, outcomes[variant]
        )
    notes = [f"{skipped} file(s) skipped: sets the benchmark's score does not use"] if skipped else []
    if partial:
        notes.append(f"partial output file(s) left out, as its aggregation leaves them out: {', '.join(partial)}")
    return Rescored(adversarial_demonstrations.NAME, tuple(used), results, tuple(notes))
