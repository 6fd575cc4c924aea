"""Toxicity on DecodingTrust: its four prompt sets as probes, and its scored continuations re-scored."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..dimensions import toxicity
from ..dimensions.probe_set import ProbeSet
from ..errors import TrustError, one_line
from .files import Tables, hub_split, local_probe_set, output_files, output_jsonl, read_jsonl_rows, require_files
from .rescored import VARIANTS, Rescored

NAME = toxicity.NAME
HUB_CONFIG = "toxicity"
HUB_DATA_FILES = None

# DecodingTrust's four prompt sets: our kind name -> (hub split, file under data/toxicity/user_prompts)
TOXICITY_SETS = {
    "toxic": ("realtoxicityprompts.toxic", "toxic.jsonl"),
    "nontoxic": ("realtoxicityprompts.nontoxic", "nontoxic.jsonl"),
    "toxic-gpt3.5": ("toxic.gpt3.5", "toxic.jsonl.gpt3.n=25.out1.split.annotated.jsonl.filtered.jsonl"),
    "toxic-gpt4": ("toxic.gpt4", "toxic.jsonl.gpt4.n=25.out1.split.annotated.jsonl.filtered.jsonl"),
}


# ------------------------------------------------------------------------------ its data
def toxicity_probes(tables: Tables) -> toxicity.ToxicityProbes:
    """Rows carry the prompt as `prompt.text` (RealToxicityPrompts layout) or `text`."""
    prompts = []
    for kind, rows in tables.items():
        for index, (where, row) in enumerate(rows):
            prompt = row.get("prompt")
            text = prompt.get("text") if isinstance(prompt, dict) else row.get("text")
            if not isinstance(text, str) or not text.strip():
                raise TrustError(f"{where}: no prompt text (expected prompt.text)")
            prompts.append(toxicity.Prompt(f"{kind}-{index:04d}", text, kind))
    return toxicity.ToxicityProbes(tuple(prompts))


def load_local(root: Path) -> ProbeSet:
    paths = require_files(root, [f"toxicity/user_prompts/{name}" for _, name in TOXICITY_SETS.values()])
    tables = {kind: read_jsonl_rows(p) for kind, p in zip(TOXICITY_SETS, paths)}
    return local_probe_set(NAME, toxicity_probes(tables), root, paths)


def load_hub(tables: Tables, where: str) -> toxicity.ToxicityProbes:
    return toxicity_probes({kind: hub_split(tables, split, "toxicity") for kind, (split, _) in TOXICITY_SETS.items()})


# ----------------------------------------------------------------------- its output files
_TOXICITY_FILE = re.compile(r"(toxic-gpt3\.5|toxic-gpt4|nontoxic|toxic)-template-([01])")
TOXICITY_RUNS = {"0": "benign", "1": "adversarial"}


def rescore(paths: Sequence[Path], data: Path | None = None) -> Rescored:
    """Toxicity-scored continuations: JSON lines, one per prompt, each the list of the
    benchmark's scored records {continuation, score: {toxicity: x} | null} (its annotation
    output, stored as JSON instead of its pickle, which we never read). File names carry
    `<set>-template-<0|1>` (0 = benign system prompt, 1 = adversarial)."""
    files = output_files(paths, "*.jsonl", lambda p: bool(_TOXICITY_FILE.search(p.name)))
    outputs: dict[str, list[str]] = {}
    scores: dict[str, float] = {}
    counts: dict[tuple[str, str], int] = {}
    dropped = 0
    for path in files:
        match = _TOXICITY_FILE.search(path.name)
        if match is None:
            raise TrustError(f"{path}: the name must carry <set>-template-<0|1> (set: toxic, nontoxic, ...)")
        kind, run = match.group(1), TOXICITY_RUNS[match.group(2)]
        rows = output_jsonl(path)
        counts[(kind, run)] = len(rows)
        for index, (number, records) in enumerate(rows):
            where = f"{path}:{number}"
            if not isinstance(records, list) or not records:
                raise TrustError(f"{where}: expected a list of scored continuations")
            texts = []
            for record in records:
                if not isinstance(record, dict) or not isinstance(record.get("continuation"), str):
                    raise TrustError(f"{where}: each record needs a continuation string")
                text, value = record["continuation"], _toxicity_value(record.get("score"), where)
                if value is None:
                    # unscored: empty (skipped by both) or an API failure (ignored by the benchmark's max)
                    dropped += bool(text.strip())
                    texts.append("")
                    continue
                scores.setdefault(text.strip(), value)
                texts.append(text)
            outputs[f"{run}/{kind}-{index:04d}"] = texts
    kinds = sorted({k for k, _ in counts})
    for kind in kinds:
        sizes = {run: counts.get((kind, run)) for run in TOXICITY_RUNS.values()}
        if None in sizes.values() or len(set(sizes.values())) != 1:
            raise TrustError(f"toxicity outputs for {kind}: need template-0 and -1 files of one size, got {sizes}")
    probes = toxicity.ToxicityProbes(tuple(
        toxicity.Prompt(f"{kind}-{i:04d}", "", kind) for kind in kinds for i in range(counts[(kind, "benign")])
    ))
    results = {}
    for variant in VARIANTS:
        pooled = toxicity.score(probes, outputs, variant, scores=scores)
        # the benchmark averages one EMT per file (prompt set x system prompt)
        per_file = toxicity.emts_by(pooled.outcomes, lambda o: o.key.rsplit("-", 1)[0])
        subscores = {**pooled.subscores, **{f"{name.replace('/', '_')}_emt": 100.0 * e for name, e in per_file.items()}}
        results[variant] = replace(pooled, score=toxicity.score_from_emts(list(per_file.values())), subscores=subscores)
    notes = (f"{dropped} non-empty continuation(s) had no score and were left out",) if dropped else ()
    return Rescored(toxicity.NAME, tuple(files), results, notes)


def _toxicity_value(score: Any, where: str) -> float | None:
    if score is None:
        return None
    value = score.get("toxicity") if isinstance(score, dict) else score
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise TrustError(f"{where}: toxicity score {one_line(value)!r} is not a number in [0, 1]")
    return float(value)
