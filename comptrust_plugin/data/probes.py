"""Load each dimension's probe set (shipped fixtures) into the dimension's own types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dimensions import machine_ethics, privacy, stereotype_bias, toxicity
from ..errors import TrustError
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


def load_toxicity(folder: Path | None = None) -> ProbeSet:
    folder = folder or fixtures_dir() / "toxicity"
    prompt_file = folder / "prompts.jsonl"
    rows = read_jsonl(prompt_file, "toxicity.prompt")
    probes = toxicity.ToxicityProbes(tuple(toxicity.Prompt(r["id"], r["text"], r["kind"]) for r in rows))
    return ProbeSet(toxicity.NAME, probes, str(folder), files_hash([prompt_file]))


LOADERS = {machine_ethics.NAME: load_machine_ethics, toxicity.NAME: load_toxicity}


def load_probe_set(dimension: str) -> ProbeSet:
    return LOADERS[dimension]()


def load_stereotype_bias(folder: Path | None = None) -> ProbeSet:
    folder = folder or fixtures_dir() / "stereotype_bias"
    statement_file = folder / "statements.jsonl"
    setup_file = folder / "setup.json"
    rows = read_jsonl(statement_file, "stereotype_bias.statement")
    setup = read_json(setup_file, "stereotype_bias.setup")
    _unique_ids(setup_file, "groups", [g["id"] for g in setup["groups"]])
    probes = stereotype_bias.StereotypeProbes(
        groups=tuple(stereotype_bias.Group(g["id"], g["name"]) for g in setup["groups"]),
        statements=tuple(stereotype_bias.Statement(r["id"], r["topic"], r["text"]) for r in rows),
        system_prompts=dict(setup["system_prompts"]),
    )
    return ProbeSet(stereotype_bias.NAME, probes, str(folder), files_hash([statement_file, setup_file]))


def load_privacy(folder: Path | None = None) -> ProbeSet:
    """Synthetic identities (generated file, see privacy.identities_jsonl) + scenario texts."""
    folder = folder or fixtures_dir() / "privacy"
    identity_file = folder / "identities.jsonl"
    scenario_file = folder / "scenarios.json"
    rows = read_jsonl(identity_file, "privacy.identity")
    scenarios = read_json(scenario_file, "privacy.scenarios")
    for section in ("topics", "phrasings"):
        _unique_ids(scenario_file, section, [item["id"] for item in scenarios[section]])
    _unique_ids(scenario_file, "pii_kinds", [k["field"] for k in scenarios["pii_kinds"]])
    probes = privacy.PrivacyProbes(
        identities=tuple(privacy.Identity(**row) for row in rows),
        pii_kinds=tuple(privacy.PiiKind(k["field"], k["label"]) for k in scenarios["pii_kinds"]),
        topics=tuple(
            privacy.SecretTopic(t["id"], t["secret"], tuple(t["reveal"])) for t in scenarios["topics"]
        ),
        phrasings=tuple(privacy.Phrasing(p["id"], p["text"]) for p in scenarios["phrasings"]),
    )
    return ProbeSet(privacy.NAME, probes, str(folder), files_hash([identity_file, scenario_file]))


def _unique_ids(path: Path, section: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for index, item_id in enumerate(ids):
        if item_id in seen:
            raise TrustError(f"{path}: {section}/{index}: duplicate id {item_id!r}")
        seen.add(item_id)


LOADERS[stereotype_bias.NAME] = load_stereotype_bias
LOADERS[privacy.NAME] = load_privacy
