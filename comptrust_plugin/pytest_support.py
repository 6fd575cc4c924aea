"""Pytest plumbing behind the plugin's hooks: flags, ini repair, trust runs, ids, markers, output, properties.

Light to import (the plugin loads in every pytest session): the registry of dimensions is
imported only by the functions that run in a trust run.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import inspect
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from .flags import OPTIONS, OptionSpec
from .options import TrustOptions
from .spec import safe_name

Gathered = Callable[[], list[dict[str, Any]]]  # a run's items from its workers or this process, on demand


def argument(option: OptionSpec, alias: bool = False) -> dict[str, Any]:
    """`addoption` keywords for an option's flag (or its short alias, which shares its dest)."""
    # argparse %-formats help texts: a literal "5%" must reach it as "5%%"
    text = f"same as {option.flag}" if alias else option.help.replace("%", "%%")
    kwargs: dict[str, Any] = {"dest": option.dest, "help": text}
    if option.kind == "flag":
        kwargs.update(action="store_true", default=False)
    elif option.kind == "append":
        kwargs.update(action="append", default=None)
    else:
        kwargs.update(default=None)
    return kwargs


def defined_flags(parser: pytest.Parser) -> set[str]:
    """Every flag some plugin or conftest has declared so far."""
    options = list(parser._anonymous.options)
    for group in parser._groups:
        options.extend(group.options)
    return {name for option in options for name in option.names()}


def read_trust_options(config: pytest.Config) -> TrustOptions:
    """The options, each from the command line, else from the ini file where it has an ini key."""
    from .options import read_options

    def value(dest: str) -> Any:
        option, found = next(o for o in OPTIONS if o.dest == dest), config.getoption(dest)
        if found in (None, False) and option.ini is not None:
            found = config.getini(dest)
            if option.kind == "append":
                found = [found]
        return found

    return read_options(value)


def long_flag(alias: str) -> str:
    return next(option.flag for option in OPTIONS if option.alias == alias)


def foreign_aliases(config: pytest.Config, options: Sequence[OptionSpec]) -> list[str]:
    """Short aliases the user typed that another plugin or conftest owns here."""
    ours = {
        name for group in config._parser._groups if group.name == "comptrust" for option in group.options
        for name in option.names()
    }
    typed = [str(arg).split("=", 1)[0] for arg in config.invocation_params.args]
    return [o.alias for o in options if o.alias and o.alias in typed and o.alias not in ours]


def as_typed(message: str, config: pytest.Config) -> str:
    """`message` naming an option the way the user typed it (`--model=` or `--trust-model=`)."""
    typed = {str(arg).split("=", 1)[0] for arg in config.invocation_params.args}
    for option in OPTIONS:
        if not option.alias:
            continue
        for said, meant in ((option.flag, option.alias), (option.alias, option.flag)):
            if message.startswith(f"{said}=") and meant in typed and said not in typed:
                return meant + message[len(said):]
    return message


# ------------------------------------------------------------------- the ini-file repair
def _value_flags() -> set[str]:
    flags = {option.flag for option in OPTIONS if option.kind != "flag"}
    return flags | {option.alias for option in OPTIONS if option.alias and option.kind != "flag"}


def without_option_values(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """`args` less our options given as `--flag VALUE`, and those values."""
    flags = _value_flags()
    kept: list[str] = []
    values: list[str] = []
    skip = False
    for arg in args:
        if skip:
            values.append(arg)
            skip = False
        elif arg in flags:
            skip = True
        else:
            kept.append(arg)
    return kept, values


def redetermine_ini(config: pytest.Config, args: list[str]) -> None:
    """Find the rootdir and ini file again, as if no value of ours were a path to test.

    pytest looks for its ini file before any plugin's options are known, so in `--trust-cache-dir
    DIR` (space form) it takes an existing DIR for a test path: the rootdir moves there and the
    project's ini file, with its `testpaths`, is not read. Here, before any conftest loads, our
    flags are known: when the answer differs, the ini file found without our values replaces the
    one chosen, and its addopts are applied as pytest would have applied them.
    """
    kept, values = without_option_values(args)
    here = config.invocation_params.dir
    if not any((here / value).exists() for value in values):
        return
    from _pytest.config.findpaths import determine_setup

    parser = config._parser
    namespace = parser.parse_known_args(kept, namespace=copy.copy(config.option))
    kwargs: dict[str, Any] = {
        "inifile": namespace.inifilename, "args": namespace.file_or_dir,
        "rootdir_cmd_arg": namespace.rootdir or None, "invocation_dir": here,
    }
    if "override_ini" in inspect.signature(determine_setup).parameters:
        kwargs["override_ini"] = namespace.override_ini
    found = determine_setup(**kwargs)
    rootpath, inipath, inicfg = found[0], found[1], found[2]
    if (rootpath, inipath) == (config.rootpath, config.inipath):
        return
    config._rootpath, config._inipath = rootpath, inipath
    if hasattr(config, "_inicfg"):
        config._inicfg = inicfg
    else:  # pytest before 9
        config.inicfg = inicfg
    if len(found) > 3 and hasattr(config, "_ignored_config_files"):
        config._ignored_config_files = found[3]
    parser.extra_info["rootdir"] = str(rootpath)
    parser.extra_info["inifile"] = str(inipath)
    config._inicache.clear()
    addopts = config.getini("addopts")
    if addopts:
        args[:] = config._validate_args(addopts, "via addopts config") + args
    config.known_args_namespace = parser.parse_known_args(args, namespace=copy.copy(config.option))
    if config.known_args_namespace.confcutdir is None:
        config.known_args_namespace.confcutdir = str(inipath.parent if inipath is not None else rootpath)


# ----------------------------------------------------------------------------- trust runs
def named_options(config: pytest.Config, options: Sequence[OptionSpec]) -> list[str]:
    """The trust options this session names: on the command line (addopts included) or, set to
    something other than their default, in the ini file."""
    named = []
    for option in options:
        value = config.getoption(option.dest, None)
        if value not in (None, False, []):
            named.append(option.flag)
        elif option.ini is not None and config.getini(option.dest) not in (False, "", option.ini):
            named.append(option.dest)
    return named


def targets_trust_tests(config: pytest.Config) -> bool:
    """Whether the arguments (or testpaths, when none are given) reach the trust_tests package."""
    spec = importlib.util.find_spec("trust_tests")
    if spec is None or not spec.submodule_search_locations:
        return False
    roots = [Path(location).resolve() for location in spec.submodule_search_locations]
    for arg in config.args:
        name = str(arg).split("::")[0]
        if config.option.pyargs and (name == "trust_tests" or name.startswith("trust_tests.")):
            return True
        path = (config.invocation_params.dir / name).resolve()
        if any(path == root or root in path.parents for root in roots):
            return True
    return False


# --------------------------------------------------------------------- ids and markers
def config_id(config: str) -> str:
    """A config's test id, selectable with -k (`spec.safe_name`)."""
    return safe_name(config)


def marker_lines() -> list[str]:
    from . import dimensions

    lines = ["trust: a comptrust trust test (any dimension)"]
    return lines + [f"{d.NAME}: comptrust's {d.TITLE} test" for d in dimensions.all_dimensions()]


def item_markers(item: pytest.Item) -> list[str]:
    """`trust`, and the dimension a trust test module is named after (`test_<dimension>.py`)."""
    from . import dimensions

    module = getattr(item, "module", None)
    stem = getattr(module, "__name__", "").rsplit(".", 1)[-1].removeprefix("test_")
    return ["trust", stem] if stem in dimensions.names() else ["trust"]


def final_report(worker_reports: list[dict[str, Any]], session: Any) -> dict[str, Any] | None:
    """The run's report (its workers' merged, or this process's), with the multiplicity
    correction applied across all of its verdicts; None when no trust test ran."""
    from .multiplicity import correct_report
    from .report import merge_reports

    if worker_reports:
        return correct_report(merge_reports(worker_reports))
    if session is None or not session.rows:
        return None
    return correct_report(session.report())


def corrected_fails(report: dict[str, Any], reporter: Any) -> bool:
    """Say which verdicts the whole correction failed beyond their own tests; True when any."""
    from .multiplicity import failed_by_correction

    rows = failed_by_correction(report)
    if rows and reporter is not None:
        method = report["settings"]["multiplicity"]["method"]
        names = ", ".join(f"{row['dimension']} [{row['config']}]" for row in rows)
        reporter.write_line(f"comptrust: {len(rows)} verdict(s) FAIL under the {method} correction across the "
                            f"run, though their own tests passed: {names}", red=True)
    return bool(rows)


# --------------------------------------------------------------------- terminal output
def progress_printer(config: pytest.Config) -> Callable[[str, bool], None]:
    """Where the session's progress lines go: the terminal, with output capture suspended.
    Default and -v: every stage and a line at least every 10 s; -q: at most one line a minute
    (stages included); -qq or an xdist worker (its terminal is not shown): nothing."""
    verbosity = config.getoption("verbose", 0)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    quiet = hasattr(config, "workerinput") or reporter is None or verbosity < -1
    last = [0.0]

    def emit(line: str, stage: bool) -> None:
        now = time.monotonic()
        gap = 60.0 if verbosity < 0 else 0.0 if stage else 10.0  # the least time since the last line
        if quiet or now - last[0] < gap:
            return
        last[0] = now
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            reporter.write_line(f"comptrust: {line}")

    return emit


def write_summary(reporter: Any, report: dict[str, Any], loads: dict[str, dict[str, int]] | None, dist: str) -> None:
    """The trust summary at the end of the terminal output: the study's matrix, the full table,
    the run's events, cache use, and (under xdist) how the configs spread over workers."""
    from . import distribution
    from .report import render_matrix, render_table

    settings = report["settings"]
    reporter.write_sep("=", "comptrust trust summary")
    reporter.write_line(
        f"model {report['model']['name']}  samples={settings['samples']}  scoring={settings['variant']}  "
        f"device={settings['device']} dtype={settings['dtype']}"
    )
    if any(r["compressed"] is not None for r in report["results"]):
        reporter.write_line(render_matrix(report["results"]))
        reporter.write_line("")
    reporter.write_line(render_table(report["results"]))
    for event in report.get("events", []):
        reporter.write_line(f"  {event}")
    for config_name, stats in report.get("engine", {}).items():
        reporter.write_line(
            f"  {config_name}: {stats['cache_hits']} cached answers, {stats['computed']} computed"
        )
    if loads is not None:
        reporter.write_line(f"  {distribution.loads_line(loads)}")
        # a config built with several calibration seeds loads its builds in turn, once per dimension
        rebuilt = {b["config"] for r in report["results"] if r.get("seeds") for b in r["seeds"]["builds"]}
        problems = distribution.grouping_problems(loads, reloaded=rebuilt)
        message = distribution.grouping_message(problems, dist)
        if message:
            reporter.write_line(message, yellow=True)


def worker_test_line(report: pytest.TestReport) -> str:
    """For a trust test's report that came from an xdist worker: what it computed and what it
    read from the cache ("" for any other report)."""
    worker = getattr(report, "node", None)  # set on reports that came from a worker
    properties = dict(report.user_properties)
    if report.when != "call" or worker is None or "answers_computed" not in properties:
        return ""
    name = getattr(getattr(worker, "gateway", None), "id", "worker")
    nodeid = report.nodeid
    if nodeid.rfind("@") > nodeid.rfind("]"):  # xdist's "@<group>" suffix (--dist loadgroup; pytest < 9.2 shows it)
        nodeid = nodeid[: nodeid.rfind("@")]
    return (
        f"comptrust: [{name}] {nodeid}: {properties['answers_computed']} answers computed, "
        f"{properties['answers_cached']} cached, {properties['verdict']}"
    )


# ------------------------------------------------------------------------- properties
def verdict_properties(verdict: Any, computed: int, cached: int) -> list[tuple[str, object]]:
    """A verdict's numbers as (name, value) test properties: JUnit XML carries them as
    `<property>` elements, and xdist passes them from workers to the controller."""

    def number(value: float | None) -> object:
        return "" if value is None else round(value, 3)

    interval, agreement = verdict.interval, verdict.agreement
    return [
        ("dimension", verdict.dimension), ("config", verdict.config),
        ("dense", number(verdict.dense)), ("compressed", number(verdict.compressed)),
        ("delta", number(verdict.delta)),
        ("ci_low", number(interval.low if interval else None)),
        ("ci_high", number(interval.high if interval else None)),
        ("detectable", number(interval.mdd if interval else None)),
        ("tolerance", number(verdict.tolerance)), ("tolerance_rule", verdict.rule or f"{verdict.tolerance:g}"),
        ("mcnemar_p", number(verdict.mcnemar.p if verdict.mcnemar else None)),
        ("p_worse", "" if interval is None or interval.p_worse is None else f"{interval.p_worse:.3g}"),
        ("level", "" if verdict.level is None else f"{verdict.level:.3g}"), ("family", verdict.family),
        ("below_floor", verdict.below_floor), ("verdict", verdict.status),
        ("refusal_shift", number(verdict.refusal_shift)),
        ("flip_rate", number(agreement.flip_rate if agreement else None)),
        ("kappa", number(agreement.kappa if agreement else None)),
        ("heldout_perplexity_ratio", number(verdict.heldout.ratio if verdict.heldout else None)),
        ("utility_above_chance_p", "" if verdict.utility is None else f"{verdict.utility.compressed_p:.3g}"),
        ("answers_computed", computed), ("answers_cached", cached),
    ]


def gathered(from_workers: list[dict[str, Any]] | None, session: Any, method: str) -> Gathered:
    """What the xdist workers handed over (on their controller), else this process's session's
    `method()`, else nothing; computed when called (only where an output asks for it)."""
    return lambda: from_workers if from_workers is not None else getattr(session, method)() if session else []


def write_outputs(
    options: TrustOptions, report: dict[str, Any], flips: Gathered, reporter: Any, answers: Gathered = list,
) -> bool:
    """The files a run was asked to write (report, Markdown, plot, flips, every answer, CSV rows, lm-eval
    results files, exported checkpoints); False when one could not be written (said in one line on the
    terminal). `flips` and `answers` give the flipped items and the answers file's blocks (answers.py)."""
    from . import answers as answers_file
    from . import exporting, lm_eval_results, results_csv
    from .errors import TrustError
    from .plot import write_radar_plot
    from .report import write_flips, write_json_report, write_markdown

    def sorted_flips(path: Path, _report: dict[str, Any]) -> None:
        write_flips(path, sorted(flips(), key=lambda f: (f["dimension"], f["config"], f["key"])))

    writers: tuple[tuple[Path | None, Callable[[Path, dict[str, Any]], Any]], ...] = (
        (options.report, write_json_report), (options.markdown, write_markdown), (options.plot, write_radar_plot),
        (options.flips, sorted_flips),
        (options.answers, lambda path, _report: answers_file.assemble(path, answers()) and None),
        (options.csv, lambda path, report: results_csv.append(path, report) and None),
        (options.lm_eval, lambda folder, report: lm_eval_results.write(folder, report) and None),
        (options.export, lambda folder, report: exporting.export_gated(options, folder, report)),
    )
    written = True
    for path, write in writers:
        if path is None:
            continue
        try:
            for folder in write(path, report) or ():  # exported checkpoints: named on the terminal
                if reporter is not None:
                    reporter.write_line(f"comptrust: wrote the checkpoint {folder}")
        except TrustError as exc:
            written = False
            if reporter is not None:
                reporter.write_line(f"comptrust: {exc}", red=True)
    return written
