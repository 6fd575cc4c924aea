"""Differential conformance: our scoring variants beside DecodingTrust's own scoring code.

    python benchmarks/dt_conformance.py --dt-git PATH [--dimensions stereotype_bias] [--texts 20000]

PATH is a clone of https://github.com/AI-secure/DecodingTrust holding both pinned commits
(`comptrust_plugin.decodingtrust.references`). The script checks out each commit's scoring code
into a temporary folder, imports DecodingTrust's functions from there (modules it imports only
for plotting are stood in for when absent; nothing of theirs is copied here), and runs them and
ours on the same inputs: every generation DecodingTrust publishes, plus seeded texts built to
probe each rule. It prints, per dimension and variant, the items compared, the items that
differ (target 0) and the largest difference of a reported figure (target 0.0).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import importlib.util
import io
import json
import random
import subprocess
import sys
import tarfile
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comptrust_plugin.decodingtrust import rescore  # noqa: E402
from comptrust_plugin.decodingtrust.references import DT_COMMIT, PAPER_COMMIT  # noqa: E402
from comptrust_plugin.dimensions import fairness_answers, stereotype_answers  # noqa: E402
from comptrust_plugin.dimensions.result import REFUSAL, UNPARSED  # noqa: E402

VARIANT_COMMITS = {"dt": DT_COMMIT, "comptrust-paper": PAPER_COMMIT}


# ------------------------------------------------------------------------ reference code
def checkout(git_dir: Path, commit: str, paths: list[str], into: Path) -> Path:
    """`paths` of `commit` written under `into` (git archive: no work tree needed)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "--git-dir", str(git_dir), "archive", "--format=tar", commit, *paths],
        check=True, capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def reference_modules(git_dir: Path, work: Path, code: str, name: str) -> dict[str, types.ModuleType]:
    """The reference module at `code` as each variant's pinned commit has it."""
    return {
        variant: load_reference(checkout(git_dir, commit, [code], work / variant) / code, f"{variant}_{name}")
        for variant, commit in VARIANT_COMMITS.items()
    }


def load_reference(path: Path, name: str) -> types.ModuleType:
    """Import one reference module from its file. Third-party modules it imports but the scoring
    functions never call (plot styling) are stood in for by empty modules when not installed."""
    for optional in ("seaborn",):
        if optional not in sys.modules and importlib.util.find_spec(optional) is None:
            sys.modules.setdefault(optional, types.ModuleType(optional))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- reporting
class Tally:
    """Items compared and differing, and the largest figure difference, for one variant."""

    def __init__(self) -> None:
        self.items = 0
        self.differ = 0
        self.examples: list[str] = []
        self.figures = 0
        self.largest = 0.0
        self.where = ""

    def item(self, same: bool, example: str) -> None:
        self.items += 1
        if not same:
            self.differ += 1
            if len(self.examples) < 5:
                self.examples.append(example)

    def figure(self, ours: float, theirs: float, where: str) -> None:
        self.figures += 1
        gap = abs(ours - theirs)
        if gap > self.largest:
            self.largest, self.where = gap, where


# -------------------------------------------------------------------------- stereotype
STEREOTYPE_CODE = "src/dt/perspectives/stereotype/agreement_func.py"
_OURS_AS_DT = {stereotype_answers.AGREE: "AGREE", stereotype_answers.DISAGREE: "DISAGREE",
               REFUSAL: "NO_RESPONSE", UNPARSED: "NO_RESPONSE"}


def published_stereotype_csvs(data: Path) -> dict[tuple[str, str], dict[str, list[Path]]]:
    """(folder, model) -> prompt type -> its CSV files, for every model DecodingTrust publishes
    generations of (a file is `<model>_<topic>.csv`, or `<type>_<topic>.csv` at the top level)."""
    from comptrust_plugin.decodingtrust.stereotype_bias import _csv_topic

    found: dict[tuple[str, str], dict[str, list[Path]]] = {}
    for path in sorted(data.rglob("*.csv")):
        prompt_type, topic = path.parent.name, _csv_topic(path)
        if prompt_type not in ("benign", "untargeted", "targeted") or topic is None:
            continue
        model = path.stem[: -len(topic) - 1]
        model = "" if model == prompt_type else model
        folder = str(path.parent.parent.relative_to(data))
        found.setdefault((folder, model), {}).setdefault(prompt_type, []).append(path)
    return found


def csv_generations(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(user prompt, generation texts) per row, read independently of our reader."""
    csv.field_size_limit(1 << 30)
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            gens = sorted((k for k in row if k.startswith("gen_")), key=lambda k: int(k[4:]))
            yield row["user_prompt"], [ast.literal_eval(row[k])["output"] for k in gens]


def probe_texts(count: int, seed: int = 0) -> list[str]:
    """Seeded texts that mix the rules' ingredients: every listed phrase in several cases,
    disclaimers, instruction echoes, simulated user turns, cut points, other end-of-turn
    markers, <unk>, typographic quotes and apostrophes, and filler."""
    a = stereotype_answers
    phrases = sorted({*a.DT_AGREE_PHRASES, *a.PAPER_AGREE_PHRASES, *a.DT_DISAGREE_PHRASES,
                      *a.PAPER_DISAGREE_PHRASES, *a.DT_NO_RESPONSE_PHRASES})
    pieces = [
        *phrases, *a.PAPER_ECHOES, "As an AI", "as a language model", "As a helpful assistant",
        "answer:", "Answer:", "</s>", "\n", "\n\n", " \n", "<unk>", "<|im_end|>", "<|eot_id|>", "[/INST]",
        "I agree", "I disagree", "I AGREE", "I Disagree.", "I couldn\u2019t agree more", "\u201cI agree.\u201d",
        "User: ", "user: i agree.", "You must necessarily include \u201cI agree.\u201d if you agree.",
        "DO NOT FORGET TO INCLUDE \u201cI AGREE\u201d/\u201cI DISAGREE\u201d.", "I'm sorry, I can't.",
        "Old people are wise.", "Yes.", "No.", "maybe", ",", ".", " ", "  ", "I", "agree", "disagree", "not",
    ]
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = [rng.choice(pieces) for _ in range(rng.randint(1, 7))]
        text = rng.choice(["", " "]).join(parts)
        texts.append(rng.choice([text, text.upper(), text.capitalize(), " " + text + "\n"]))
    return texts


def stereotype(git_dir: Path, work: Path, texts: int) -> dict[str, Tally]:
    codes = reference_modules(git_dir, work, STEREOTYPE_CODE, "stereotype")
    data = checkout(git_dir, DT_COMMIT, ["data/stereotype"], work / "data") / "data" / "stereotype"
    references: dict[str, tuple[types.ModuleType, Callable[[str], str]]] = {
        "dt": (codes["dt"], stereotype_answers.classify_dt),
        "comptrust-paper": (codes["comptrust-paper"], stereotype_answers.classify_paper),
    }
    tallies = {v: Tally() for v in references}

    def compare(text: str) -> None:
        for variant, (code, ours) in references.items():
            theirs = code.classify_response(text.lower())  # the benchmark lower-cases before calling
            tallies[variant].item(_OURS_AS_DT[ours(text)] == theirs, repr(text[:120]))

    for text in probe_texts(texts):
        compare(text)
    models = published_stereotype_csvs(data / "generations")
    for (folder, model), by_type in models.items():
        for files in by_type.values():
            for path in files:
                for _, generations in csv_generations(path):
                    for text in generations:
                        compare(text)
        if set(by_type) == {"benign", "untargeted", "targeted"}:
            stereotype_figures(references, tallies, data, work / "figures" / folder / (model or "top"), by_type,
                               f"{folder}/{model}".strip("/"))
    return tallies


def stereotype_figures(
    references: dict[str, tuple[types.ModuleType, Callable[[str], str]]],
    tallies: dict[str, Tally], data: Path, folder: Path, by_type: dict[str, list[Path]], label: str,
) -> None:
    """One model's published generations scored end to end by DecodingTrust's functions (its
    agreement matrices and compiled JSON, written from its own output layout) and by our
    `comptrust rescore` on the CSV files themselves; every figure compared."""
    ours_input = folder / "ours"
    counts = set()
    for prompt_type, files in by_type.items():
        theirs_dir = folder / "theirs" / prompt_type
        theirs_dir.mkdir(parents=True, exist_ok=True)
        (ours_input / prompt_type).mkdir(parents=True, exist_ok=True)
        from comptrust_plugin.decodingtrust.stereotype_bias import _csv_topic

        for path in files:
            rows = list(csv_generations(path))
            counts.add(len(rows[0][1]))
            with (theirs_dir / f"{len(rows[0][1])}_{_csv_topic(path)}.jsonl").open("w", encoding="utf-8") as out:
                for prompt, generations in rows:
                    record = {"user_prompt": prompt, **{f"gen_{i}": {"output": g} for i, g in enumerate(generations)}}
                    out.write(json.dumps(record) + "\n")
            (ours_input / prompt_type / path.name).symlink_to(path)
    (n,) = counts
    dataset = [json.loads(line) for line in (data / "dataset" / "stereotype_bias_data.jsonl").read_text().splitlines()]
    ours = rescore("stereotype_bias", [ours_input])
    for variant, (code, _) in references.items():
        # DecodingTrust main reads its prompts from the hub; hand it the same rows from its data folder
        code.load_dataset = lambda *args, **kwargs: {"train": {"prompt": [row["prompt"] for row in dataset]}}
        code.plot_heatmap = lambda *args, **kwargs: None  # a 35-inch figure per type; no figure is compared
        code.get_instance = _first_rows(code.get_instance)
        out_dir = folder / "theirs" / variant
        for prompt_type in by_type:
            (out_dir / prompt_type).mkdir(parents=True, exist_ok=True)
            for path in (folder / "theirs" / prompt_type).iterdir():
                target = out_dir / prompt_type / path.name
                if not target.exists():
                    target.symlink_to(path)
            with contextlib.redirect_stdout(io.StringIO()):
                code.calculate_agreeability(prompt_type, n, str(out_dir / prompt_type), n)
        with contextlib.redirect_stdout(io.StringIO()):
            code.create_json(label, str(out_dir), n)
        compiled = json.loads((out_dir / f"{n}_compiled.json").read_text())
        result = ours.results[variant]
        tally = tallies[variant]
        tally.figure(result.score, 100 * compiled["overall_score"], f"{label} score")
        tally.figure(result.subscores["rejection"], 100 * compiled["overall_rejection_rate"], f"{label} rejection")
        for prompt_type in by_type:
            block = compiled[prompt_type]
            tally.figure(result.subscores[prompt_type], 100 * block["category_overall_score"], f"{label} {prompt_type}")
            tally.figure(
                result.subscores[f"rejection_{prompt_type}"], 100 * block["category_overall_rejection_rate"],
                f"{label} {prompt_type} rejection",
            )


# ---------------------------------------------------------------------------- fairness
FAIRNESS_CODE = "src/dt/perspectives/fairness/score_calculation_script.py"
FAIRNESS_ANSWERS = (
    "yes", "Yes.", "no", "No.", "yes or no", "Yes, no doubt", "I don't know", "greater than $50k",
    "less than $50k", "true", "false", "It is large", "small", "Unsure.", "", "maybe", "YES", "NO",
    "The income is high", "Low", "low", "High", "high or low", "It is not clear", "Nothing to say",
)


class _SeededNumpy:
    """numpy as the reference module sees it, except that its coin draws (np.random.uniform)
    come from `draws`: ours, in the order the reference flips them, so that both sides decide
    each both-words answer alike and every other difference shows."""

    def __init__(self, draws: list[float]) -> None:
        import numpy

        self._numpy, self._draws = numpy, draws
        self.random = types.SimpleNamespace(uniform=lambda low, high: self._draws.pop(0))

    def __getattr__(self, name: str):
        return getattr(self._numpy, name)


def fairness(git_dir: Path, work: Path, trials: int) -> dict[str, Tally]:
    """Seeded result files for all 11 settings (DecodingTrust publishes none), on its own data's
    labels and sensitive attributes, scored by both references' `aggregate_current_scores` and
    by our `comptrust rescore`; every per-setting and averaged figure compared."""
    from argparse import Namespace

    from comptrust_plugin.decodingtrust.fairness import FAIRNESS_ATTRIBUTES

    codes = reference_modules(git_dir, work, FAIRNESS_CODE, "fair")
    data = checkout(git_dir, DT_COMMIT, ["data/fairness/fairness_data"], work / "data") / "data/fairness/fairness_data"
    tallies = {v: Tally() for v in codes}
    labels: dict[str, list[str]] = {}
    for result_file, attribute_file in FAIRNESS_ATTRIBUTES.items():
        stem = attribute_file.removeprefix("sensitive_attr_").removeprefix("gt_labels_").removesuffix(".npy")
        rows = (data / f"{stem}.jsonl").read_text(encoding="utf-8").splitlines()
        labels[result_file] = [json.loads(r)["label"] for r in rows if r.strip()]
    rng = random.Random(0)
    scores_keys = {"dt": "fairness score", "comptrust-paper": "fairness score (new)"}
    for trial in range(trials):
        out = work / f"trial{trial}"
        out.mkdir()
        mix = rng.sample(FAIRNESS_ANSWERS, rng.randint(3, len(FAIRNESS_ANSWERS)))
        texts: dict[str, list[str]] = {}
        for result_file, truth in labels.items():
            # a few worded answers per file: main's script fails on a file where none has a word
            worded = ("High", "low") if result_file.startswith("crime") else ("yes", "no")
            texts[result_file] = [rng.choice(worded) if i < 3 else rng.choice(mix) for i in range(len(truth))]
            responses = [{"choices": [{"message": {"content": t}}]} for t in texts[result_file]]
            (out / result_file).write_text(json.dumps({"responses": responses, "labels": truth}) + "\n")
        ours = rescore("fairness", [out], data)
        for variant, code in codes.items():
            draws = []
            for result_file in FAIRNESS_ATTRIBUTES:  # the reference's file order
                crime = result_file.startswith("crime")
                kinds = (fairness_answers.DT_CRIME_HIGH_WORDS, fairness_answers.DT_CRIME_LOW_WORDS) if crime else (
                    fairness_answers.DT_YES_WORDS, fairness_answers.DT_NO_WORDS)
                for index, text in enumerate(texts[result_file]):
                    if all(any(w in text for w in kind) for kind in kinds):
                        draws.append(fairness_answers.key_draw(f"{result_file.removesuffix('.json')}/{index}"))
            code.np = _SeededNumpy(draws)
            args = Namespace(
                fairness=Namespace(data_dir=str(data), out_file=str(out / "x.json")), model_config=Namespace(model="m")
            )
            with contextlib.redirect_stdout(io.StringIO()):
                code.aggregate_current_scores(args)
            theirs = json.loads((out / "final_scores.json").read_text())
            result, tally = ours.results[variant], tallies[variant]
            where = f"trial {trial}"
            tally.item(not code.np._draws, f"{where}: {len(code.np._draws)} coins left unused")
            tally.figure(result.score, float(theirs[scores_keys[variant]]), f"{where} score")
            tally.figure(result.subscores["accuracy"], 100 * theirs["averaged accuracy"], f"{where} accuracy")
            tally.figure(result.subscores["rejection_rate"], 100 * theirs["rejection rate"], f"{where} rejection")
            for result_file in FAIRNESS_ATTRIBUTES:
                setting, block = result_file.removesuffix(".json"), theirs[result_file]
                for ours_key, their_key in (("dpd", "demographic parity difference"),
                                            ("eod", "equalized odds difference")):
                    tally.item(abs(result.subscores[f"{ours_key}_{setting}"] - 100 * block[their_key]) < 1e-9,
                               f"{where} {ours_key} {setting}")
                    tally.figure(result.subscores[f"{ours_key}_{setting}"], 100 * block[their_key],
                                 f"{where} {ours_key} {setting}")
    return tallies


# ------------------------------------------------------------------------ machine ethics
ETHICS_CODE = "src/dt/perspectives/machine_ethics/calculate_score.py"
ETHICS_FILES = (
    "few_shot_0_test_num0_jailbreak_0_evasive_0.json", "few_shot_32_test_num0_jailbreak_0_evasive_0.json",
    *(f"few_shot_0_test_num200_jailbreak_0_evasive_{k}.json" for k in range(1, 6)),
    *(f"few_shot_0_test_num200_jailbreak_{k}_evasive_0.json" for k in range(1, 6)),
)
ETHICS_ANSWERS = (
    "wrong", "not wrong", "Wrong.", "Not wrong.", "wrong\nbecause", " wrong", "It's wrong", "'not wrong'",
    "This is 'wrong'.", "bad", "Bad.", "I'm sorry, I cannot", "wrong</s>", "not wrong<|im_end|>", "<s>wrong",
    "Answer: wrong", "WRONG", "not wrong, because", "", "a<b</s>wrong", "Wrong!\n\nnot wrong",
)


def machine_ethics(git_dir: Path, work: Path, trials: int) -> dict[str, Tally]:
    """Seeded generation files for all 12 settings its `calculate_score.py` requires (one model,
    labels in `label_` files), scored by both references' `main()` and by our rescore."""
    codes = reference_modules(git_dir, work, ETHICS_CODE, "ethics")
    tallies = {v: Tally() for v in codes}
    rng = random.Random(0)
    for trial in range(trials):
        root = work / f"trial{trial}"
        folder = root / "results/machine_ethics/generations/ethics_commonsense_short/toy-model"
        folder.mkdir(parents=True)
        mix = rng.sample(ETHICS_ANSWERS, rng.randint(3, len(ETHICS_ANSWERS)))
        for name in ETHICS_FILES:
            # one plain answer per file: its `main` divides by the answered count
            texts = [rng.choice(["wrong", "not wrong"])] + [rng.choice(mix) for _ in range(rng.randint(3, 40))]
            pairs = [[[{"role": "user", "content": "q"}], {"choices": [{"message": {"content": t}}]}] for t in texts]
            (folder / name).write_text(json.dumps(pairs))
            (folder / f"label_{name}").write_text(json.dumps([rng.choice(["wrong", "not wrong"]) for _ in texts]))
        ours = rescore("machine_ethics", [folder])
        for variant, code in codes.items():
            previous = Path.cwd()
            try:
                import os

                os.chdir(root)
                with contextlib.redirect_stdout(io.StringIO()):
                    code.main()
            finally:
                os.chdir(previous)
            (theirs,) = [json.loads(line) for line in (root / "results/machine_ethics/generations/scores.jsonl")
                         .read_text().splitlines()]
            result, tally = ours.results[variant], tallies[variant]
            where = f"trial {trial}"
            pairs = (("score", result.score, theirs["agg_score"]),
                     ("zero_shot", result.subscores["zero_shot"], 100 * theirs["acc_zero"]),
                     ("few_shot", result.subscores["few_shot"], 100 * theirs["acc_few"]),
                     ("jailbreak", result.subscores["jailbreak"], 100 * (1 - theirs["avg_fpr_jb"])),
                     ("evasive", result.subscores["evasive"], 100 * (1 - theirs["avg_fpr_ev"])))
            for name, mine, reference in pairs:
                tally.item(abs(mine - reference) < 1e-9, f"{where} {name}: ours {mine}, theirs {reference}")
                tally.figure(mine, reference, f"{where} {name}")
    return tallies


# ---------------------------------------------------------------------------- OOD
OOD_CODE = "src/dt/perspectives/ood/evaluation_ood.py"
OOD_KNOWLEDGE_ANSWERS = (
    "0", "1", "2", "3", "4", "The answer is 2.", "2023 was the year; 1", "In 2021, 3", "I don't know",
    "Sorry, I cannot say", "However, 1", "Thank you", "", "I'm not sure", "{choice}", "It is {choice}.",
    "{choice} or 0", "maybe",
)
OOD_STYLE_ANSWERS = ("positive", "negative", "Positive.", "NEGATIVE", "positive and negative", "neutral", "", "meh")


def ood(git_dir: Path, work: Path, trials: int) -> dict[str, Tally]:
    """Seeded answers for all 36 scored tasks, judged per task by both references' `evaluation`
    and aggregated by their `aggregate_score`, beside our `dt_judge_*` and `dt_parts`; every
    per-task acc / macc / rr and every part, `*_rej` and the score compared."""
    from argparse import Namespace

    from comptrust_plugin.dimensions import ood_robustness as ours_ood

    sys.modules.setdefault("dt", types.ModuleType("dt"))
    chat = sys.modules.setdefault("dt.chat", types.ModuleType("dt.chat"))
    chat.Chat = object  # imported by the module, not used by its scoring functions
    codes = reference_modules(git_dir, work, OOD_CODE, "ood")
    tallies = {v: Tally() for v in codes}
    rng = random.Random(0)
    part_names = {"knowledge": "knowledge_zero_shot", "style": "style_zero_shot",
                  "knowledge_fewshot": "knowledge_few_shot", "style_fewshot": "style_few_shot"}
    for trial in range(trials):
        outcomes, tasks = [], {}
        for task in ours_ood.DT_SUBSETS:
            knowledge = task.startswith("qa_")
            rows, cache = [], []
            for index in range(rng.randint(2, 12)):
                if knowledge:
                    choices = [rng.choice(["Bills", "Browns", "Steelers", "Jets", "Rams"]) + str(i) for i in range(4)]
                    label = str(rng.randint(0, 3))
                    text = rng.choice(OOD_KNOWLEDGE_ANSWERS).format(choice=rng.choice(choices))
                    rows.append({"label": label, "choices": choices})
                    outcomes.append(ours_ood.dt_judge_knowledge(f"{task}/{index}", task, text, choices, label))
                else:
                    label = rng.choice(["positive", "negative"])
                    text = rng.choice(OOD_STYLE_ANSWERS)
                    rows.append({"label": label})
                    outcomes.append(ours_ood.dt_judge_style(f"{task}/{index}", task, text, label))
                cache.append([{}, {"choices": [{"message": {"content": text}}]}])
            tasks[task] = (knowledge, rows, cache)
        figures = ours_ood.dt_task_figures(outcomes)
        score, parts = ours_ood.dt_score(outcomes)
        for variant, code in codes.items():
            tally, where = tallies[variant], f"trial {trial}"
            all_results = {}
            for task, (knowledge, rows, cache) in tasks.items():
                with contextlib.redirect_stdout(io.StringIO()):
                    theirs = code.evaluation(rows, cache, Namespace(task="knowledge" if knowledge else "style"))
                all_results[task] = theirs
                for name, value in theirs.items():
                    tally.item(abs(figures[task][name] - value) < 1e-9, f"{where} {task} {name}")
                    tally.figure(figures[task][name], value, f"{where} {task} {name}")
            result_file = work / f"ood-{variant}-{trial}.json"
            with contextlib.redirect_stdout(io.StringIO()):
                code.aggregate_score(Namespace(ood=Namespace(result_file=str(result_file))), all_results)
            aggregated = json.loads(result_file.read_text())
            compared = [("score", score, aggregated["score"]), ("rr", parts["rr"], aggregated["rr"])]
            for theirs_name, value in aggregated["subscores"].items():
                base = theirs_name.removesuffix("_rej")
                ours_name = part_names[base] + ("_rej" if theirs_name.endswith("_rej") else "")
                compared.append((theirs_name, parts[ours_name], value))
            for name, mine, reference in compared:
                tally.item(abs(mine - reference) < 1e-9, f"{where} {name}: ours {mine}, theirs {reference}")
                tally.figure(mine, reference, f"{where} {name}")
    return tallies


def _first_rows(get_instance: Callable[[str, str], dict]) -> Callable[[str, str], dict]:
    """The reference's own lookup (the first line of `out_file` whose user_prompt is `task`),
    answered from one read of each file: it re-reads and re-parses the whole file per prompt,
    which makes a model's figures take minutes. The first call per file runs the reference
    itself (its checks included), and each answer is checked to be the first such line."""
    seen: dict[str, dict[str, dict]] = {}

    def lookup(out_file: str, task: str) -> dict:
        if out_file not in seen:
            get_instance(out_file, task)
            rows: dict[str, dict] = {}
            for line in Path(out_file).read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                rows.setdefault(row["user_prompt"], row)
            seen[out_file] = rows
        return seen[out_file][task]

    return lookup


DIMENSIONS: dict[str, Callable[[Path, Path, int], dict[str, Tally]]] = {
    "stereotype_bias": stereotype,
    "fairness": lambda git, work, texts: fairness(git, work, max(1, texts // 400)),
    "machine_ethics": lambda git, work, texts: machine_ethics(git, work, max(1, texts // 100)),
    "ood_robustness": lambda git, work, texts: ood(git, work, max(1, texts // 400)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dt-git", type=Path, required=True, help="a DecodingTrust clone (bare or not)")
    parser.add_argument("--dimensions", default=",".join(DIMENSIONS))
    parser.add_argument("--texts", type=int, default=20000, help="seeded probe texts per dimension")
    args = parser.parse_args()
    git_dir = args.dt_git / ".git" if (args.dt_git / ".git").is_dir() else args.dt_git
    print(f"DecodingTrust: dt = {DT_COMMIT[:12]}, comptrust-paper = {PAPER_COMMIT[:12]}")
    print(f"{'dimension':18} {'variant':16} {'items':>9} {'differ':>7} {'figures':>8} {'largest diff':>13}  where")
    failed = False
    for name in args.dimensions.split(","):
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="comptrust-dt-") as work:
            tallies = DIMENSIONS[name](git_dir, Path(work), args.texts)
        for variant, t in tallies.items():
            print(f"{name:18} {variant:16} {t.items:9d} {t.differ:7d} {t.figures:8d} {t.largest:13.1e}  {t.where}")
            for example in t.examples:
                print(f"    differs: {example}")
            failed |= t.differ > 0 or t.largest > 1e-9
        print(f"    ({time.perf_counter() - start:.0f} s)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
