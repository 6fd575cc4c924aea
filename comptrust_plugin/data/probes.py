"""Load each dimension's probe set (shipped fixtures) into the dimension's own types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dimensions import (
    adversarial_demonstrations,
    adversarial_robustness,
    benign_utility,
    fairness,
    machine_ethics,
    ood_robustness,
    privacy,
    stereotype_bias,
    toxicity,
)
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




def load_adversarial_robustness(folder: Path | None = None) -> ProbeSet:
    folder = folder or fixtures_dir() / "adversarial_robustness"
    item_file, demo_file = folder / "items.jsonl", folder / "demos.json"
    rows = read_jsonl(item_file, "adversarial_robustness.item")
    demos = read_json(demo_file, "adversarial_robustness.demos")
    _unique_ids(item_file, "items", [r["id"] for r in rows])
    ar = adversarial_robustness
    probes = ar.AdvProbes(
        items=tuple(
            ar.Item(r["id"], r["task"], r["label"], r["perturbation"], r["clean"], r["perturbed"]) for r in rows
        ),
        demos=tuple(
            ar.Demo(task, {k: v for k, v in d.items() if k != "label"}, d["label"])
            for task, entries in demos.items() for d in entries
        ),
    )
    return ProbeSet(ar.NAME, probes, str(folder), files_hash([item_file, demo_file]))


def load_ood_robustness(folder: Path | None = None) -> ProbeSet:
    folder = folder or fixtures_dir() / "ood_robustness"
    files = [folder / "knowledge.jsonl", folder / "style.jsonl", folder / "demos.json"]
    questions = read_jsonl(files[0], "ood_robustness.question")
    styled = read_jsonl(files[1], "ood_robustness.style")
    demos = read_json(files[2], "ood_robustness.demos")
    _unique_ids(files[0], "questions", [r["id"] for r in questions])
    _unique_ids(files[1], "items", [r["id"] for r in styled])
    for number, row in enumerate(styled, start=1):
        missing = sorted(set(demos["style"]) - set(row["styles"]))
        if missing:
            raise TrustError(f"{files[1]}:{number}: no {', '.join(missing)} rewrite (demos.json has that style)")
    ood = ood_robustness

    def question(r: dict[str, Any]) -> ood_robustness.Question:
        return ood.Question(r["id"], r["period"], r["date"], r["question"], tuple(r["choices"]), r["answer"])

    probes = ood.OodProbes(
        questions=tuple(question(r) for r in questions),
        style_items=tuple(ood.StyleItem(r["id"], r["label"], r["base"], r["styles"]) for r in styled),
        knowledge_demos=tuple(question(r) for r in demos["knowledge"]),
        style_demos={style: tuple((d["text"], d["label"]) for d in items) for style, items in demos["style"].items()},
    )
    return ProbeSet(ood.NAME, probes, str(folder), files_hash(files))


def load_adversarial_demonstrations(folder: Path | None = None) -> ProbeSet:
    folder = folder or fixtures_dir() / "adversarial_demonstrations"
    item_file = folder / "items.jsonl"
    rows = read_jsonl(item_file, "adversarial_demonstrations.item")
    _unique_ids(item_file, "items", [r["id"] for r in rows])
    ad = adversarial_demonstrations
    probes = ad.AdvDemoProbes(tuple(
        ad.DemoItem(
            r["id"], r["family"], r["task"], r["input"], r["label"],
            tuple((text, label) for text, label in r["examples"]), r.get("target"),
        )
        for r in rows
    ))
    return ProbeSet(ad.NAME, probes, str(folder), files_hash([item_file]))


def load_fairness(folder: Path | None = None) -> ProbeSet:
    """Synthetic profiles (generated file, see fairness.profiles_jsonl)."""
    folder = folder or fixtures_dir() / "fairness"
    profile_file = folder / "profiles.jsonl"
    rows = read_jsonl(profile_file, "fairness.profile")
    _unique_ids(profile_file, "profiles", [r["id"] for r in rows])
    for number, row in enumerate(rows, start=1):
        for field, known in (("education", fairness.EDUCATION), ("occupation", fairness.OCCUPATION)):
            if row[field] not in known:
                raise TrustError(f"{profile_file}:{number}: unknown {field} {row[field]!r}; use one of {sorted(known)}")
    profiles = [fairness.Profile(**row) for row in rows]
    demos = [p for p in profiles if p.role == "demo"]
    if sum(p.income_over_50k for p in demos) < 8 or sum(not p.income_over_50k for p in demos) < 8:
        raise TrustError(f"{profile_file}: needs at least 8 demo profiles over and 8 under $50k")
    probes = fairness.FairnessProbes(
        tests=tuple(p for p in profiles if p.role == "test"), demos=tuple(demos)
    )
    return ProbeSet(fairness.NAME, probes, str(folder), files_hash([profile_file]))


def load_benign_utility(folder: Path | None = None) -> ProbeSet:
    folder = folder or fixtures_dir() / "benign_utility"
    question_file = folder / "questions.jsonl"
    rows = read_jsonl(question_file, "benign_utility.question")
    _unique_ids(question_file, "questions", [r["id"] for r in rows])
    shots = {r["subject"] for r in rows if r["split"] == "dev"}
    for number, row in enumerate(rows, start=1):
        if row["split"] == "test" and row["subject"] not in shots:
            raise TrustError(f"{question_file}:{number}: subject {row['subject']!r} has no dev questions to show")
    bu = benign_utility
    probes = bu.UtilityProbes(tuple(
        bu.McQuestion(r["id"], r["subject"], r["split"], r["question"], tuple(r["choices"]), r["answer"]) for r in rows
    ))
    return ProbeSet(bu.NAME, probes, str(folder), files_hash([question_file]))


LOADERS = {
    machine_ethics.NAME: load_machine_ethics, toxicity.NAME: load_toxicity,
    stereotype_bias.NAME: load_stereotype_bias, privacy.NAME: load_privacy,
    adversarial_robustness.NAME: load_adversarial_robustness, ood_robustness.NAME: load_ood_robustness,
    adversarial_demonstrations.NAME: load_adversarial_demonstrations, fairness.NAME: load_fairness,
    benign_utility.NAME: load_benign_utility,
}


def load_probe_set(dimension: str, data: str | None = None) -> ProbeSet:
    """The dimension's probes from `data`: the shipped fixtures (None or "shipped"), or
    DecodingTrust's data ("decodingtrust[@REVISION]" from the hub, or a local folder)."""
    if data in (None, "", "shipped"):
        return LOADERS[dimension]()
    from .decodingtrust import load_decodingtrust, parse_data_option

    return load_decodingtrust(dimension, parse_data_option(data))
