"""Stereotype bias on DecodingTrust: its statements as probes, and its generation files re-scored."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from pathlib import Path

from ..data.files import fixtures_dir, read_json
from ..dimensions import stereotype_bias
from ..dimensions.probe_set import ProbeSet
from ..errors import TrustError, one_line
from .files import (
    Row,
    Tables,
    local_probe_set,
    output_files,
    output_jsonl,
    read_csv_rows,
    read_jsonl_rows,
    require_files,
)
from .rescored import VARIANTS, Rescored

NAME = stereotype_bias.NAME
HUB_CONFIG = "stereotype"

STEREOTYPE_FILE = "stereotype/dataset/stereotype_bias_data.jsonl"
HUB_DATA_FILES = (STEREOTYPE_FILE,)


# The benchmark's 24 demographic group tags (its rows' `demographic_group_tag`): facts of its
# data, used to tell which group a statement in its output files is about.
STEREOTYPE_GROUPS = (
    "Homosexuals", "Muslims", "Black people", "Physically disabled people", "Asians", "Women", "Old people",
    "Jews", "Poor people", "Immigrants", "Mexicans", "Latin Americans", "Men", "Christians", "White people",
    "Able-bodied people", "Canadians", "Young people", "Rich people", "Europeans", "Atheists", "Americans",
    "Caucasians", "Buddhists",
)


def stereotype_group(user_prompt: str) -> str | None:
    """The group a benchmark user prompt is about: the statement (after its "statement:") starts
    with the group's tag, as a whole word; the longest matching tag wins."""
    statement = re.split(r"statement:", user_prompt, flags=re.IGNORECASE)[-1].strip().lower()
    hits = [
        g for g in STEREOTYPE_GROUPS
        if statement.startswith(g.lower()) and not statement[len(g):len(g) + 1].isalpha()
    ]
    return max(hits, key=len) if hits else None


# ------------------------------------------------------------------------------ its data
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def stereotype_probes(rows: list[Row], system_prompts: dict[str, str]) -> stereotype_bias.StereotypeProbes:
    """Rows: `prompt` = {text, stereotype_topic_tag, demographic_group_tag, sys_prompt_type_tag}.

    The benchmark's user prompt (its answer-format request + the statement, group named) is
    used verbatim; each statement is bound to its group. Its rows repeat a statement once per
    system-prompt type; we keep one (every statement runs under all three types anyway). The
    system prompts are not in its data: they come from `system_prompts` (ours).
    """
    groups: dict[str, stereotype_bias.Group] = {}
    statements: dict[tuple[str, str, str], stereotype_bias.Statement] = {}
    for where, row in rows:
        prompt = row.get("prompt")
        fields = ("text", "stereotype_topic_tag", "demographic_group_tag", "sys_prompt_type_tag")
        if not isinstance(prompt, dict) or not all(isinstance(prompt.get(f), str) for f in fields):
            raise TrustError(f"{where}: expected prompt.{{{', '.join(fields)}}} strings")
        if prompt["sys_prompt_type_tag"] not in stereotype_bias.PROMPT_TYPES:
            raise TrustError(f"{where}: unknown sys_prompt_type_tag {prompt['sys_prompt_type_tag']!r}")
        group_name = prompt["demographic_group_tag"]
        group_id = _slug(group_name)
        groups.setdefault(group_id, stereotype_bias.Group(group_id, group_name))
        key = (prompt["stereotype_topic_tag"], group_id, prompt["text"])
        if key not in statements:
            number = sum(1 for k in statements if k[:2] == key[:2]) + 1
            statements[key] = stereotype_bias.Statement(
                f"{_slug(key[0])}-{group_id}-{number}", key[0], prompt["text"], group=group_id,
            )
    return stereotype_bias.StereotypeProbes(
        groups=tuple(groups.values()), statements=tuple(statements.values()),
        system_prompts=system_prompts, instruction="",
    )


def _shipped_stereotype_system_prompts() -> dict[str, str]:
    setup = read_json(fixtures_dir() / "stereotype_bias" / "setup.json", "stereotype_bias.setup")
    return dict(setup["system_prompts"])


def load_local(root: Path) -> ProbeSet:
    paths = require_files(root, [STEREOTYPE_FILE])
    probes = stereotype_probes(read_jsonl_rows(paths[0]), _shipped_stereotype_system_prompts())
    return local_probe_set(NAME, probes, root, paths)


def load_hub(tables: Tables, where: str) -> stereotype_bias.StereotypeProbes:
    rows = [row for split in tables.values() for row in split]
    return stereotype_probes(rows, _shipped_stereotype_system_prompts())


# ----------------------------------------------------------------------- its output files
_STEREOTYPE_FILE = re.compile(r"^(\d+)_(\w+)\.jsonl$")
# (where, user prompt, generation texts) for each row of one output file
_Rows = list[tuple[str, str, list[str]]]


def _csv_topic(path: Path) -> str | None:
    """The topic of an earlier-layout CSV, `<anything>_<topic>.csv` (topics hold underscores)."""
    hits = [t for t in stereotype_bias.TOPIC_ORDER if path.stem == t or path.stem.endswith("_" + t)]
    return max(hits, key=len) if hits else None


def _jsonl_rows(path: Path, count: int) -> _Rows:
    rows: _Rows = []
    for number, row in output_jsonl(path):
        where = f"{path}:{number}"
        prompt = row.get("user_prompt") if isinstance(row, dict) else None
        if not isinstance(prompt, str):
            raise TrustError(f"{where}: no user_prompt")
        texts = []
        for index in range(count):
            gen = row.get(f"gen_{index}")
            if not isinstance(gen, dict) or not isinstance(gen.get("output"), str):
                raise TrustError(f"{where}: no gen_{index}.output (the file name promises {count} generations)")
            texts.append(gen["output"])
        rows.append((where, prompt, texts))
    return rows


def _csv_rows(path: Path) -> _Rows:
    """The earlier layout: columns model, system_prompt, user_prompt, gen_0..gen_<n-1>, each gen
    cell a Python-literal dict holding `output` (read as a literal: no code runs)."""
    rows: _Rows = []
    for where, row in read_csv_rows(path, what="DecodingTrust output file"):
        prompt = row.get("user_prompt")
        gens = sorted((k for k in row if k and re.fullmatch(r"gen_\d+", k)), key=lambda k: int(k[4:]))
        if not isinstance(prompt, str) or not gens:
            raise TrustError(f"{where}: expected columns user_prompt and gen_0, gen_1, ...")
        texts = []
        for key in gens:
            try:
                cell = ast.literal_eval(row[key] or "")
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                cell = None
            if not isinstance(cell, dict) or not isinstance(cell.get("output"), str):
                raise TrustError(f"{where}: {key} is not a literal {{'output': ...}} dict")
            texts.append(cell["output"])
        rows.append((where, prompt, texts))
    return rows


def rescore(paths: Sequence[Path], data: Path | None = None) -> Rescored:
    """Folders benign/, untargeted/, targeted/ of `<n>_<topic>.jsonl` files (lines: user_prompt,
    gen_0..gen_<n-1> each with output), or of the earlier layout's `<anything>_<topic>.csv`
    files. As the benchmark does, the first row of a prompt counts (a CSV holding two models'
    rows is scored on the first model's)."""
    def keep(p: Path) -> bool:
        if p.parent.name not in stereotype_bias.PROMPT_TYPES:
            return False
        return bool(_STEREOTYPE_FILE.match(p.name)) if p.suffix == ".jsonl" else _csv_topic(p) is not None

    files = output_files(paths, "*.*", lambda p: p.suffix in (".jsonl", ".csv") and keep(p), "stereotype")
    groups: dict[str, stereotype_bias.Group] = {}
    statements: dict[tuple[str, str], stereotype_bias.Statement] = {}
    outputs: dict[str, list[str]] = {}
    types_seen: set[str] = set()
    for path in files:
        prompt_type = path.parent.name
        match = _STEREOTYPE_FILE.match(path.name)
        topic = match.group(2) if match else _csv_topic(path)
        if prompt_type not in stereotype_bias.PROMPT_TYPES or topic is None:
            raise TrustError(
                f"{path}: expected <type>/<n>_<topic>.jsonl or <type>/<name>_<topic>.csv with type benign, "
                "untargeted or targeted"
            )
        types_seen.add(prompt_type)
        rows = _jsonl_rows(path, int(match.group(1))) if match else _csv_rows(path)
        for where, prompt, texts in rows:
            group_name = stereotype_group(prompt)
            if group_name is None:
                raise TrustError(f"{where}: the statement names none of DecodingTrust's 24 groups")
            group_id = _slug(group_name)
            groups.setdefault(group_id, stereotype_bias.Group(group_id, group_name))
            statement = statements.setdefault(
                (topic, prompt), stereotype_bias.Statement(f"{topic}-{len(statements)}", topic, prompt, group_id)
            )
            key = f"{prompt_type}/{group_id}/{statement.id}"
            if key not in outputs:  # the benchmark reads the first row of a repeated prompt
                outputs[key] = texts
    missing = [t for t in stereotype_bias.PROMPT_TYPES if t not in types_seen]
    if missing:
        raise TrustError(f"stereotype outputs: no {', '.join(missing)}/ folder (the score needs all three types)")
    # the benchmark's matrix rows run in its group order (its mean sums them in that order)
    ordered = sorted(groups.values(), key=lambda g: STEREOTYPE_GROUPS.index(g.name))
    probes = stereotype_bias.StereotypeProbes(
        groups=tuple(ordered), statements=tuple(statements.values()),
        system_prompts={t: "" for t in stereotype_bias.PROMPT_TYPES}, instruction="",
    )
    for request in stereotype_bias.build_requests(probes):
        if request.key not in outputs:
            prompt_type, _, statement_id = request.key.split("/")
            text = next(s.text for s in probes.statements if s.id == statement_id)
            raise TrustError(f"stereotype outputs: {prompt_type}/ has no generations for {one_line(text[-80:])!r}")
    results = {v: stereotype_bias.score(probes, outputs, v) for v in VARIANTS}
    return Rescored(stereotype_bias.NAME, tuple(files), results)
