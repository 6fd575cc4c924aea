"""pytest glue only: options, fixtures, parametrization, summary table, report file.

All science lives in the modules this file calls (session, gate, dimensions, report).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from . import devices, distribution
from .errors import TrustError
from .options import OPTIONS, OptionSpec, TrustOptions, read_options
from .report import (
    merge_reports,
    render_matrix,
    render_table,
    write_flips,
    write_json_report,
    write_markdown,
    write_radar_plot,
)
from .session import TrustSession
from .spec import SpecError

_session_key = pytest.StashKey[TrustSession]()
_options_key = pytest.StashKey[TrustOptions]()
_worker_reports_key = pytest.StashKey[list[dict[str, Any]]]()
_worker_flips_key = pytest.StashKey[list[dict[str, Any]]]()
_worker_loads_key = pytest.StashKey[dict[str, dict[str, int]]]()
_LOADGROUP_KEY = "comptrust_loadgroup"  # workerinput: the controller runs --dist loadgroup
_BY_DEST = {option.dest: option for option in OPTIONS}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("comptrust", "comptrust: trust gates for compressed LLMs")
    for option in OPTIONS:
        if option.action == "store_true":
            group.addoption(option.flag, dest=option.dest, action="store_true", default=False, help=option.help)
        else:
            group.addoption(option.flag, dest=option.dest, action=option.action, default=None, help=option.help)
        if option.ini is not None:
            parser.addini(option.dest, f"default {option.flag}", default=option.ini)


def _value(config: pytest.Config, option: OptionSpec) -> Any:
    """The command-line value, else the ini value where the option has an ini key."""
    value = config.getoption(option.dest)
    if value is None and option.ini is not None:
        value = config.getini(option.dest)
        if option.action == "append":
            value = [value]
    return value


def _options(config: pytest.Config) -> TrustOptions:
    return read_options(lambda dest: _value(config, _BY_DEST[dest]))


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.option.help:
        return
    try:
        options = _options(config)
        options.validate()
    except (TrustError, SpecError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_options_key] = options
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        _configure_worker(config, workerinput)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(config), "comptrust-xdist")


def _configure_worker(config: pytest.Config, workerinput: dict[str, Any]) -> None:
    """On an xdist worker: take the GPU and the grouping the controller handed over."""
    # xdist re-parses the command line on a worker, so a loadgroup the controller chose by
    # default (not typed) must be passed on, or the worker would not tag its test ids by group.
    if workerinput.get(_LOADGROUP_KEY):
        config.option.loadgroup = True
    gpu = workerinput.get(devices.WORKER_GPU_KEY)
    if gpu is not None:
        try:
            devices.pin_to_gpu(gpu)
        except TrustError as exc:
            raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(hookwrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Any:
    """With -n and no --dist, run --dist loadgroup. A wrapper runs before xdist's own hook,
    so it still sees "no" where the user named no mode (xdist then fills in "load")."""
    option = config.option
    if hasattr(option, "dist") and hasattr(option, "numprocesses"):
        option.dist = distribution.choose_dist(option.numprocesses, option.dist, bool(option.distload))
    yield


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: one worker per visible GPU (see devices.auto_worker_count for CPUs);
    xdist's own PYTEST_XDIST_AUTO_NUM_WORKERS still overrides it."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    device = _value(config, _BY_DEST["trust_device"])
    gpus = devices.visible_gpus() if devices.wants_gpu(device) else []
    return devices.auto_worker_count(gpus, device)


def pytest_report_header(config: pytest.Config) -> str | None:
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return distribution.dist_note(config.getoption("dist", "no"))
    return None


def _session(config: pytest.Config) -> TrustSession:
    if _session_key not in config.stash:
        try:
            config.stash[_session_key] = TrustSession(config.stash[_options_key])
        except TrustError as exc:
            pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    return config.stash[_session_key]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "compressed_model" not in metafunc.fixturenames:
        return
    options = metafunc.config.stash[_options_key]
    if options.specs:
        params: list[Any] = list(options.specs)
        ids = [s.canonical for s in options.specs]
    else:
        params, ids = [None], ["profile"]
    # One xdist group per config: with --dist loadgroup a worker gets all of a config's tests.
    grouped = [
        pytest.param(p, marks=pytest.mark.xdist_group(distribution.group_name(i))) for p, i in zip(params, ids)
    ]
    metafunc.parametrize("compressed_model", grouped, ids=ids, indirect=True, scope="session")


@pytest.fixture(scope="session")
def trust_session(request: pytest.FixtureRequest) -> TrustSession:
    """The run's TrustSession: evaluates dimensions, gates, and records report rows."""
    return _session(request.config)


@pytest.fixture(scope="session")
def dense_model(trust_session: TrustSession) -> Any:
    """Handle on the uncompressed model (loaded lazily, only if an answer is not cached)."""
    try:
        return trust_session.handle()
    except TrustError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def compressed_model(request: pytest.FixtureRequest, trust_session: TrustSession) -> Any:
    """Handle on one compressed config (None in a dense-only profile run)."""
    spec = getattr(request, "param", None)
    if spec is None:
        yield None
        return
    try:
        handle = trust_session.handle(spec)
    except TrustError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield handle
    trust_session.release(handle)


@pytest.fixture
def trust_check(trust_session: TrustSession, dense_model: Any, compressed_model: Any) -> Any:
    """`trust_check(dimension_module)` -> Verdict; fails the test with the gate's message."""

    def check(dimension: Any) -> Any:
        try:
            verdict = trust_session.check(dimension, dense_model, compressed_model)
        except TrustError as exc:
            pytest.fail(str(exc), pytrace=False)
        if not verdict.passed:
            pytest.fail(verdict.message(), pytrace=False)
        return verdict

    return check


def _final_report(config: pytest.Config) -> dict[str, Any] | None:
    """This process's report, or on an xdist controller the merge of its workers' reports."""
    worker_reports = config.stash.get(_worker_reports_key, [])
    if worker_reports:
        return merge_reports(worker_reports)
    session = config.stash.get(_session_key, None)
    if session is None or not session.rows:
        return None
    return session.report()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # workers hand their rows to the controller, which prints one table
    report = _final_report(config)
    if report is None:
        return
    settings = report["settings"]
    terminalreporter.write_sep("=", "comptrust trust summary")
    terminalreporter.write_line(
        f"model {report['model']['name']}  samples={settings['samples']}  scoring={settings['variant']}  "
        f"device={settings['device']} dtype={settings['dtype']}"
    )
    if any(r["compressed"] is not None for r in report["results"]):
        terminalreporter.write_line(render_matrix(report["results"]))
        terminalreporter.write_line("")
    terminalreporter.write_line(render_table(report["results"]))
    for event in report.get("events", []):
        terminalreporter.write_line(f"  {event}")
    for config_name, stats in report.get("engine", {}).items():
        terminalreporter.write_line(
            f"  {config_name}: {stats['cache_hits']} cached answers, {stats['computed']} computed"
        )
    loads = config.stash.get(_worker_loads_key, None)
    if loads is not None:
        terminalreporter.write_line(f"  {distribution.loads_line(loads)}")
        problems = distribution.grouping_problems(loads)
        message = distribution.grouping_message(problems, config.getoption("dist", "no"))
        if message:
            terminalreporter.write_line(message, yellow=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        trust = config.stash.get(_session_key, None)
        if trust is not None and trust.rows:
            config.workeroutput["comptrust_report"] = json.dumps(trust.report())
            config.workeroutput["comptrust_flips"] = json.dumps(trust.flips())
            config.workeroutput["comptrust_loads"] = json.dumps(trust.loads)
        return
    report = _final_report(config)
    if report is None:
        return
    writers = (
        ("trust_report", write_json_report), ("trust_markdown", write_markdown), ("trust_plot", write_radar_plot),
    )
    for option, write in writers:
        path = config.getoption(option, None)
        if path:
            write(Path(path), report)
    flips_path = config.getoption("trust_flips", None)
    if flips_path:
        session_flips = config.stash.get(_worker_flips_key, None)
        if session_flips is None:
            session_flips = config.stash[_session_key].flips() if _session_key in config.stash else []
        session_flips.sort(key=lambda f: (f["dimension"], f["config"], f["key"]))
        write_flips(Path(flips_path), session_flips)


class XdistHooks:
    """Registered only when pytest-xdist is active: collect each worker's report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._gpus: list[str] | None = None

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        """Hand each worker its GPU (an entry of the caller's list) and the grouping, before it starts."""
        config = self.config
        node.workerinput[_LOADGROUP_KEY] = config.getoption("dist", "no") == distribution.GROUPED_DIST
        options = config.stash[_options_key]
        if not devices.wants_gpu(options.device):
            return
        if self._gpus is None:
            self._gpus = devices.visible_gpus()
        try:
            gpu = devices.gpu_for_worker(node.workerinput["workerid"], self._gpus)
        except TrustError as exc:
            raise pytest.UsageError(str(exc)) from None
        if gpu is not None:
            node.workerinput[devices.WORKER_GPU_KEY] = gpu

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {})
        if output.get("comptrust_report"):
            self.config.stash.setdefault(_worker_reports_key, []).append(json.loads(output["comptrust_report"]))
            self.config.stash.setdefault(_worker_flips_key, []).extend(json.loads(output["comptrust_flips"]))
        if output.get("comptrust_loads"):
            worker = node.workerinput.get("workerid", "?")
            self.config.stash.setdefault(_worker_loads_key, {})[worker] = json.loads(output["comptrust_loads"])
