"""OOD robustness on DecodingTrust: its questions and styled sentences as probes, and its output files re-scored."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..dimensions import ood_robustness
from ..dimensions.probe_set import ProbeSet
from ..dimensions.result import DimensionResult, ItemOutcome
from ..errors import TrustError, one_line
from .files import (
    Row,
    Tables,
    hub_split,
    load_output_json,
    local_probe_set,
    output_files,
    read_csv_rows,
    read_json_file,
    read_jsonl_rows,
    reply_text,
    request_pairs,
    require_files,
)
from .rescored import VARIANTS, Rescored

NAME = ood_robustness.NAME
HUB_CONFIG = "ood"
HUB_DATA_FILES = None

# DecodingTrust's OOD data by its task ("category") names. Local copy (its repository's
# data/ood/), as its main branch ships it: knowledge.json and style.json (test/dev sets and demo
# sets by name); or the earlier files: knowledge/<category>.jsonl for the questions,
# knowledge/demo_<domain><run>.jsonl for demos; styles/dev[_<style>].tsv for the test sets,
# styles/train_demo[_<style>]_<run>.tsv for demos. Hub (config "ood"): splits "knowledge" and
# "style", rows tagged by "category".
OOD_ROOT = "ood"
OOD_KNOWLEDGE_TESTS = ("qa_2023", "qa_2020")
OOD_KNOWLEDGE_DEMO = "global_facts_0"  # the one demo set our few-shot knowledge setting shows
OOD_KNOWLEDGE_SHOTS = 5
OOD_STYLE_DEMO = "base_0"  # DT's scored few-shot style runs show base-style (in-distribution) demos
OOD_STYLE_SHOTS = 8


# ------------------------------------------------------------------------------ its data
def ood_category(relative: Path) -> str | None:
    """The benchmark's task name of a file below data/ood/ (None for other files)."""
    parts, stem = relative.parts, relative.stem
    if len(parts) == 2 and parts[0] == "knowledge" and relative.suffix == ".jsonl":
        found = re.fullmatch(r"demo_(.+?)(\d+)", stem)
        return f"{found.group(1)}_{found.group(2)}" if found else stem
    if len(parts) == 2 and parts[0] == "styles" and relative.suffix == ".tsv":
        if stem == "dev":
            return "base"
        if stem.startswith("dev_"):
            return stem[len("dev_"):]
        found = re.fullmatch(r"train_demo(?:_(.+))?_(\d+)", stem)
        if found:
            return f"{found.group(1) or 'base'}_{found.group(2)}"
    return None


def ood_local_tables(root: Path) -> tuple[Tables, list[Path]]:
    """Every OOD file of a local copy (DT's data/ or data/ood/ folder) as tables by task name."""
    base = root / OOD_ROOT if (root / OOD_ROOT).is_dir() else root
    hub_files = [base / "knowledge.jsonl", base / "style.jsonl"]
    if any(p.is_file() for p in hub_files):  # the hub's two files, downloaded
        paths = require_files(base, ["knowledge.jsonl", "style.jsonl"])
        return ood_hub_tables({"knowledge": read_jsonl_rows(paths[0]), "style": read_jsonl_rows(paths[1])}), paths
    knowledge_json = next((p for p in (base / "knowledge.json", base / "knowledge" / "knowledge.json") if p.is_file()),
                          None)
    style_json = next((p for p in (base / "style.json", base / "styles" / "style.json") if p.is_file()), None)
    if knowledge_json is not None or style_json is not None:  # its main branch: two JSON files
        if knowledge_json is None or style_json is None:
            missing = "knowledge.json" if knowledge_json is None else "style.json"
            raise TrustError(f"{base}: missing DecodingTrust data file {missing} (beside the other one)")
        return _json_layout_tables(knowledge_json, style_json), [knowledge_json, style_json]
    if not (base / "knowledge").is_dir() and not (base / "styles").is_dir():
        raise TrustError(
            f"{root}: missing DecodingTrust data folders {OOD_ROOT}/knowledge/ and {OOD_ROOT}/styles/ "
            "(or the hub's knowledge.jsonl and style.jsonl)"
        )
    tables: Tables = {}
    paths = []
    for path in sorted(base.rglob("*")):
        category = ood_category(path.relative_to(base)) if path.is_file() else None
        if category is None:
            continue
        tables[category] = read_csv_rows(path, tsv=True) if path.suffix == ".tsv" else read_jsonl_rows(path)
        paths.append(path)
    return tables, paths


def _json_layout_tables(knowledge: Path, style: Path) -> Tables:
    """Its main branch's layout: knowledge.json {"test": {task: [rows]}, "demo": {set: [rows]}}
    and style.json {"dev": {style: [rows]}, "train_demo": {set: [rows]}} (a style's test set is
    its task name; the unstyled set is "base")."""
    tables: Tables = {}
    for path, sections in ((knowledge, ("test", "demo")), (style, ("dev", "train_demo"))):
        content = read_json_file(path)
        for section in sections:
            block = content.get(section) if isinstance(content, dict) else None
            if not isinstance(block, dict):
                raise TrustError(f"{path}: expected an object with a {section!r} object of tasks")
            for name, rows in block.items():
                if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                    raise TrustError(f"{path}: {section}.{name} is not a list of objects")
                tables[name] = [(f"{path}: {section}.{name}[{i}]", row) for i, row in enumerate(rows)]
    return tables


def ood_hub_tables(tables: Tables) -> Tables:
    """The hub's "knowledge" and "style" splits regrouped by their rows' "category"."""
    grouped: Tables = {}
    for split in ("knowledge", "style"):
        for where, row in hub_split(tables, split, "ood"):
            category = row.get("category")
            if not isinstance(category, str) or not category:
                raise TrustError(f"{where}: no category (the benchmark's task name)")
            grouped.setdefault(category, []).append((where, row))
    return grouped


def ood_rows(tables: Tables, category: str, where: str) -> list[Row]:
    if category not in tables:
        raise TrustError(f"{where}: no DecodingTrust OOD task {category!r} (found: {', '.join(sorted(tables))})")
    return tables[category]


def ood_question(where: str, row: dict[str, Any]) -> tuple[str, str, tuple[str, ...], str]:
    """(date, question, four choices, answer digit) of a knowledge row; the answer is a digit
    string, stored as ["2"] in the repository's files and as "2" on the hub."""
    answer = row.get("answer")
    answer = answer[0] if isinstance(answer, list) and answer else answer
    choices = row.get("choices")
    question = row.get("question_sentence")
    if not isinstance(question, str) or not isinstance(choices, list) or len(choices) != 4:
        raise TrustError(f"{where}: expected question_sentence and four choices")
    if str(answer).strip() not in ("0", "1", "2", "3"):
        raise TrustError(f"{where}: answer {one_line(answer)!r} is not 0, 1, 2 or 3")
    return str(row.get("question_date") or ""), question, tuple(str(c) for c in choices), str(answer).strip()


def ood_sentence(where: str, row: dict[str, Any]) -> tuple[str, int]:
    """(text, label 0/1) of a style row: `sentence`/`label` in the TSV files,
    `question_sentence`/`answer` on the hub."""
    text = row.get("sentence", row.get("question_sentence"))
    label = str(row.get("label", row.get("answer"))).strip()
    if not isinstance(text, str) or label not in ("0", "1"):
        raise TrustError(f"{where}: expected a sentence and a label 0 or 1")
    return text.strip(), int(label)


def ood_probes(tables: Tables, where: str) -> ood_robustness.OodProbes:
    """The benchmark's questions and styled sentences in our probe types: recent = its 2023
    questions, past = its 2020 questions; knowledge demos = its first MMLU demo set; style
    items = row i of every styled test set (the sets are the same SST-2 sentences restyled, so
    row i must carry one label throughout; a mismatch names the row); style demos = its
    base-style demo set, shown before every style as in its scored few-shot runs."""
    questions = []
    for category, period in (("qa_2023", "recent"), ("qa_2020", "past")):
        for index, (row_where, row) in enumerate(ood_rows(tables, category, where)):
            date, text, choices, answer = ood_question(row_where, row)
            questions.append(
                ood_robustness.Question(f"{category}-{index:04d}", period, date, text, choices, int(answer))
            )
    demos = []
    for index, (row_where, row) in enumerate(ood_rows(tables, OOD_KNOWLEDGE_DEMO, where)[:OOD_KNOWLEDGE_SHOTS]):
        date, text, choices, answer = ood_question(row_where, row)
        demos.append(ood_robustness.Question(f"demo-{index}", "past", date, text, choices, int(answer)))
    styled = {style: ood_rows(tables, style, where) for style in ood_robustness.DT_STYLES}
    sizes = {style: len(rows) for style, rows in styled.items()}
    if len(set(sizes.values())) != 1:
        raise TrustError(f"{where}: DecodingTrust's styled test sets differ in size ({sizes}); expected aligned rows")
    items = []
    for index in range(next(iter(sizes.values()))):
        texts, labels = {}, set()
        for style, rows in styled.items():
            texts[style], label = ood_sentence(*rows[index])
            labels.add(label)
        if len(labels) != 1:
            raise TrustError(f"{styled[ood_robustness.DT_STYLES[-1]][index][0]}: row {index} has different labels "
                             "across the styled sets (expected the same sentence restyled)")
        base = ood_sentence(*tables["base"][index])[0] if len(tables.get("base", [])) > index else ""
        items.append(ood_robustness.StyleItem(f"sst2-{index:04d}", labels.pop(), base, texts))
    style_demo = tuple(ood_sentence(*r) for r in ood_rows(tables, OOD_STYLE_DEMO, where)[:OOD_STYLE_SHOTS])
    return ood_robustness.OodProbes(
        questions=tuple(questions), style_items=tuple(items), knowledge_demos=tuple(demos),
        style_demos={style: style_demo for style in ood_robustness.DT_STYLES},
    )


def load_local(root: Path) -> ProbeSet:
    tables, paths = ood_local_tables(root)
    return local_probe_set(NAME, ood_probes(tables, str(root)), root, paths)


def load_hub(tables: Tables, where: str) -> ood_robustness.OodProbes:
    return ood_probes(ood_hub_tables(tables), where)


# ----------------------------------------------------------------------- its output files
# The benchmark's five output files per model (results/ood/results/<model>/), each a JSON
# object {task name: {"outputs": [[request, response], ...], "score": {...}}}. In
# knowledge_idk.json the task "qa_2023" is the "I don't know" variant (its qa_2023_idk).
OOD_FILES = ("knowledge_standard.json", "knowledge_idk.json", "knowledge_2020_5shot.json", "style.json",
             "style_8shot.json")
OOD_STORED_TOLERANCE = 0.05  # points; a stored per-task score further from ours is reported


def _ood_test_set(subset: str) -> str:
    """The data set a scored task was run on: few-shot knowledge on qa_2020, few-shot style on
    the styled set before "_base_<run>", zero-shot tasks on their own set."""
    if subset in ood_robustness.DT_KNOWLEDGE_FEW_SHOT:
        return "qa_2020"
    if subset in ood_robustness.DT_STYLE_FEW_SHOT:
        return subset.rsplit("_base_", 1)[0]
    return "qa_2023" if subset.startswith("qa_2023") else subset


def rescore(paths: Sequence[Path], data: Path | None) -> Rescored:
    """Labels and options come from `data` (DecodingTrust's data/ood/, or the hub's two files);
    outputs are matched to its rows in order, as its evaluation does. Both variants use its
    reading (`ood_robustness.dt_judge_*`): the dimension's variants agree, and our option-letter
    parser does not apply to its digit options."""
    if data is None:
        raise TrustError("ood_robustness: pass --data PATH, DecodingTrust's data/ood/ folder (questions and labels)")
    tables, _ = ood_local_tables(data)
    files = output_files(paths, "*.json", lambda p: p.name in OOD_FILES)
    outcomes: list[ItemOutcome] = []
    seen: set[str] = set()
    skipped: list[str] = []
    stored_off: list[str] = []
    partial: list[str] = []
    for path in files:
        if path.name not in OOD_FILES:
            raise TrustError(f"{path}: not a DecodingTrust OOD output file ({', '.join(OOD_FILES)})")
        content = load_output_json(path)
        if not isinstance(content, dict):
            raise TrustError(f"{path}: expected {{task: {{outputs: [[request, response], ...]}}}}")
        for task, entry in content.items():
            subset = f"{task}_idk" if path.name == "knowledge_idk.json" else task
            if subset not in ood_robustness.DT_SUBSETS:
                skipped.append(f"{path.name}:{task}")  # run by the benchmark but not in its score
                continue
            if subset in seen:
                raise TrustError(f"{path}: task {task!r} appears in a second file; name one model's files only")
            if not isinstance(entry, dict) or not isinstance(entry.get("outputs"), list):
                raise TrustError(f"{path}: task {one_line(task)!r} has no outputs list")
            seen.add(subset)
            rows = ood_rows(tables, _ood_test_set(subset), str(data))
            pairs = request_pairs(entry["outputs"], path)
            if len(pairs) > len(rows):
                raise TrustError(
                    f"{path}: task {task!r} has {len(pairs)} outputs but the data has {len(rows)} rows "
                    "(another revision of DecodingTrust's data?)"
                )
            if len(pairs) < len(rows):  # an unfinished run: its evaluation scores the outputs it has
                partial.append(f"{path.name}:{task} ({len(pairs)} of {len(rows)})")
            mine = []
            for index, ((where, row), (_, response)) in enumerate(zip(rows, pairs)):
                text = reply_text(response, f"{path} {task} item {index}")
                key = f"{subset}/{index}"
                if subset.startswith("qa_"):
                    _, _, choices, answer = ood_question(where, row)
                    mine.append(ood_robustness.dt_judge_knowledge(key, subset, text, choices, answer))
                else:
                    label = ood_robustness.SENTIMENT[ood_sentence(where, row)[1]]
                    mine.append(ood_robustness.dt_judge_style(key, subset, text, label))
            outcomes += mine
            stored = entry.get("score")
            if isinstance(stored, dict) and isinstance(stored.get("acc"), (int, float)):
                ours = sum(o.value == 1.0 for o in mine) / len(mine) * 100 if mine else 0.0
                if abs(ours - float(stored["acc"])) > OOD_STORED_TOLERANCE:
                    stored_off.append(f"{path.name}:{task} acc {ours:.2f} vs stored {float(stored['acc']):.2f}")
    missing = [s for s in ood_robustness.DT_SUBSETS if s not in seen]
    if missing:
        raise TrustError(
            f"OOD outputs: {len(missing)} of the benchmark's 36 scored tasks missing ({', '.join(missing[:6])}"
            f"{', ...' if len(missing) > 6 else ''}); pass all five files of one model"
        )
    score, parts = ood_robustness.dt_score(outcomes)
    for task, figures in ood_robustness.dt_task_figures(outcomes).items():  # as its result file stores them
        parts.update({f"{task}_{name}": value for name, value in figures.items()})
    results = {v: DimensionResult.from_outcomes(ood_robustness.NAME, v, score, parts, outcomes) for v in VARIANTS}
    notes = []
    if skipped:
        notes.append(f"{len(skipped)} task(s) run by the benchmark but not in its score were skipped")
    if partial:
        notes.append(f"partial task(s), the outputs present scored as the benchmark does: {'; '.join(partial[:6])}")
    if stored_off:
        notes.append(f"accuracy differs from the score stored in the file: {'; '.join(stored_off[:5])}")
    return Rescored(ood_robustness.NAME, tuple(files), results, tuple(notes))
