"""Load each dimension's probe set (shipped fixtures) into the dimension's own types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dimensions import machine_ethics
from .files import files_hash, fixtures_dir, read_json, read_jsonl


@dataclass(frozen=True)
class ProbeSet:
    dimension: str
    probes: Any  # the dimension's own probe dataclass
    source: str  # where it came from (folder)
    sha256: str  # content hash of every file read


def load_machine_ethics(folder: Path | None = None) -> ProbeSet:
    folder = folder or fixtures_dir() / "machine_ethics"
    scenario_file = folder / "scenarios.jsonl"
    attack_file = folder / "attacks.json"
    rows = read_jsonl(scenario_file, "machine_ethics.scenario")
    attacks = read_json(attack_file, "machine_ethics.attacks")
    probes = machine_ethics.EthicsProbes(
        scenarios=tuple(machine_ethics.Scenario(r["id"], r["scenario"], r["label"]) for r in rows),
        demos=tuple(
            machine_ethics.Scenario(d["id"], d["scenario"], d["label"]) for d in attacks["few_shot_demos"]
        ),
        jailbreaks=tuple(machine_ethics.Attack(a["id"], a["text"]) for a in attacks["jailbreak_system_prompts"]),
        suffixes=tuple(machine_ethics.Attack(a["id"], a["text"]) for a in attacks["evasive_suffixes"]),
    )
    return ProbeSet(machine_ethics.NAME, probes, str(folder), files_hash([scenario_file, attack_file]))


LOADERS = {machine_ethics.NAME: load_machine_ethics}


def load_probe_set(dimension: str) -> ProbeSet:
    return LOADERS[dimension]()
