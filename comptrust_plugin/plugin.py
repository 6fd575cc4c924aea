"""pytest glue only: options, when a session is a trust run, fixtures, ids, progress, results.

Installed, this plugin loads in every pytest session of the environment. It acts only in a
*trust run*: a session that names a trust option (command line, addopts or ini file), points at
the `trust_tests` package, or collects a test that uses the trust fixtures. Anywhere else it
declares its options and does nothing more: no `-n auto` or `--dist` choice, no GPU pinning, no
usage errors, and no import of the science. All science lives in the modules this file calls
(session, gate, dimensions, report), imported when a trust run starts.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import TYPE_CHECKING, Any

import pytest

from . import collection, pytest_support
from .errors import TrustError
from .flags import OPTIONS

if TYPE_CHECKING:
    from .options import TrustOptions
    from .session import TrustSession

_active_key = pytest.StashKey[bool]()
_session_key = pytest.StashKey["TrustSession"]()
_options_key = pytest.StashKey["TrustOptions"]()
_worker_reports_key = pytest.StashKey[list[dict[str, Any]]]()
_worker_flips_key = pytest.StashKey[list[dict[str, Any]]]()
_worker_answers_key = pytest.StashKey[list[dict[str, Any]]]()
_worker_loads_key = pytest.StashKey[dict[str, dict[str, int]]]()
_LOADGROUP_KEY = "comptrust_loadgroup"  # workerinput: the controller runs --dist loadgroup
_whole_key = pytest.StashKey["TrustOptions"]()  # --trust-shard: options with the whole run's collection


class TrustInconclusiveWarning(pytest.PytestWarning):
    """A confident-gate verdict whose interval straddles the tolerance: neither pass nor fail."""


class TrustNoEvidenceWarning(pytest.PytestWarning):
    """A verdict that passes without evidence: "no evidence" or "capability loss" (see the reason)."""


# ------------------------------------------------------------------------------ options
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("comptrust", "comptrust: trust gates for compressed LLMs")
    for option in OPTIONS:
        group.addoption(option.flag, **pytest_support.argument(option))
        if option.ini is None:
            continue
        if option.kind == "flag":
            parser.addini(option.dest, f"default {option.flag} (true/false)", type="bool", default=False)
        else:
            parser.addini(option.dest, f"default {option.flag}", default=option.ini)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> Any:
    """Before conftests load: find the ini file as if our options' values were not paths to test.
    After: add the short aliases (`--model`, `--compress`) no conftest or plugin defined itself."""
    pytest_support.redetermine_ini(early_config, args)
    yield
    group = parser.getgroup("comptrust")
    taken = pytest_support.defined_flags(parser)
    for option in OPTIONS:
        if option.alias and option.alias not in taken:
            group.addoption(option.alias, **pytest_support.argument(option, alias=True))


# --------------------------------------------------------------------------- trust runs
def _is_trust_run(config: pytest.Config) -> bool:
    """A trust option was named, or the arguments (testpaths when none) reach trust_tests."""
    if pytest_support.named_options(config, OPTIONS):
        return True
    return pytest_support.targets_trust_tests(config)


def _activate(config: pytest.Config) -> None:
    """Check every option (and what can be checked without a model) once; usage errors here."""
    if config.stash.get(_active_key, False):
        return
    config.stash[_active_key] = True
    from .preflight import preflight
    from .spec import SpecError

    try:
        options = pytest_support.read_trust_options(config)
        options.validate()
        preflight(options)
    except (TrustError, SpecError) as exc:
        raise pytest.UsageError(pytest_support.as_typed(str(exc), config)) from None
    config.stash[_options_key] = options
    for line in pytest_support.marker_lines():
        config.addinivalue_line("markers", line)
    for flag in pytest_support.foreign_aliases(config, OPTIONS):
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(f"comptrust: {flag} belongs to another plugin or conftest here; "
                                       f"use {pytest_support.long_flag(flag)} for comptrust"), stacklevel=2,
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Any:
    """In a trust run: check the options, and with -n and no --dist run --dist loadgroup. A
    wrapper runs before xdist's own hook, so it still sees "no" where the user named no mode."""
    if not (config.option.help or config.option.version) and _is_trust_run(config):
        _activate(config)
        option = config.option
        if hasattr(option, "dist") and hasattr(option, "numprocesses"):
            from . import distribution

            option.dist = distribution.choose_dist(option.numprocesses, option.dist, bool(option.distload))
    yield


def _active(config: pytest.Config) -> bool:
    return config.stash.get(_active_key, False)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if not _active(config):
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        _configure_worker(config, workerinput)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(config), "comptrust-xdist")


def _configure_worker(config: pytest.Config, workerinput: dict[str, Any]) -> None:
    """On an xdist worker: take the GPU and the grouping the controller handed over."""
    from . import devices

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


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto` in a trust run: one worker per visible GPU (see devices.auto_worker_count for
    CPUs); xdist's own PYTEST_XDIST_AUTO_NUM_WORKERS still overrides it."""
    if not _active(config) or os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    from . import devices

    device = config.stash[_options_key].device
    gpus = devices.visible_gpus() if devices.wants_gpu(device) else []
    return devices.auto_worker_count(gpus, device)


def pytest_report_header(config: pytest.Config) -> str | None:
    if _active(config) and getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        from . import distribution

        return distribution.dist_note(config.getoption("dist", "no"))
    return None


# ------------------------------------------------------------------ collection and fixtures
def _session(config: pytest.Config) -> TrustSession:
    if _session_key not in config.stash:
        from .session import TrustSession

        try:
            config.stash[_session_key] = TrustSession(config.stash[_options_key])
        except TrustError as exc:
            pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
        config.stash[_session_key].progress = pytest_support.progress_printer(config)
    return config.stash[_session_key]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "compressed_model" not in metafunc.fixturenames:
        return
    config = metafunc.config
    if not _active(config):  # a trust test found where the arguments did not say so
        try:
            _activate(config)
        except pytest.UsageError as exc:
            pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    from . import distribution

    options = config.stash[_options_key]
    if options.specs:
        params: list[Any] = list(options.specs)
        configs = [s.canonical for s in options.specs]
    else:
        params, configs = [None], ["profile"]
    # One xdist group per config: with --dist loadgroup a worker gets all of a config's tests.
    grouped = [
        pytest.param(p, marks=pytest.mark.xdist_group(distribution.group_name(c))) for p, c in zip(params, configs)
    ]
    ids = [pytest_support.config_id(c) for c in configs]
    metafunc.parametrize("compressed_model", grouped, ids=ids, indirect=True, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every trust test gets the `trust` marker and its dimension's (`-m toxicity`)."""
    if not _active(config):
        return
    for item in items:
        if "trust_check" in getattr(item, "fixturenames", ()):
            for name in pytest_support.item_markers(item):
                item.add_marker(name)


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_by_shard(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--trust-shard=I/N: after -k and -m, this job's share of the tests; the rest is deselected."""
    options: TrustOptions | None = config.stash.get(_options_key, None) if _active(config) else None
    if options is not None and options.shard is not None:
        config.stash[_whole_key] = collection.select_shard(config, items, options)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The run's gated tests, after deselection, are the family a multiplicity correction covers,
    and its benign-utility tests say where the capability check may use them (on a shard: the
    whole run's, so each test decides as the unsharded run would)."""
    stash = session.config.stash
    if _active(session.config) and _options_key in stash:
        whole = stash.get(_whole_key, None)
        stash[_options_key] = whole or collection.with_family(
            stash[_options_key], collection.gated_tests(session.items), session.items)


@pytest.fixture(scope="session")
def trust_session(request: pytest.FixtureRequest) -> TrustSession:
    """The run's TrustSession: evaluates dimensions, gates, and records report rows."""
    return _session(request.config)


def _fail(message: str) -> None:
    """Fail the test with `message` alone (called outside `except`: no chained traceback)."""
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def dense_model(trust_session: TrustSession) -> Any:
    """Handle on the uncompressed model (loaded lazily, only if an answer is not cached)."""
    error = ""
    try:
        return trust_session.handle()
    except TrustError as exc:
        error = str(exc)
    _fail(error)


@pytest.fixture(scope="session")
def compressed_model(request: pytest.FixtureRequest, trust_session: TrustSession) -> Any:
    """Handle on one compressed config (None in a dense-only profile run)."""
    spec = getattr(request, "param", None)
    if spec is None:
        yield None
        return
    error = ""
    try:
        handle = trust_session.handle(spec)
    except TrustError as exc:
        error = str(exc)
    if error:
        _fail(error)
    yield handle
    trust_session.release(handle)


@pytest.fixture
def trust_check(
    request: pytest.FixtureRequest, trust_session: TrustSession, dense_model: Any, compressed_model: Any
) -> Any:
    """`trust_check(dimension_module)` -> Verdict; fails the test with the gate's message. The
    verdict's numbers become the test's properties (JUnit XML `<property>`, kept under xdist)."""

    def check(dimension: Any) -> Any:
        error = ""
        before = trust_session.answer_counts()
        try:
            verdict = trust_session.check(dimension, dense_model, compressed_model)
        except TrustError as exc:
            error = str(exc)
        if error:
            _fail(error)
        computed, cached = (now - then for now, then in zip(trust_session.answer_counts(), before))
        request.node.user_properties.extend(pytest_support.verdict_properties(verdict, computed, cached))
        if not verdict.passed:
            _fail(verdict.message())
        if verdict.status == "inconclusive":
            if trust_session.options.fail_on_inconclusive:
                _fail(f"{verdict.message()} (--trust-fail-on-inconclusive)")
            warnings.warn(TrustInconclusiveWarning(verdict.message()), stacklevel=2)
        if verdict.status in ("no evidence", "capability loss"):
            warnings.warn(TrustNoEvidenceWarning(verdict.message()), stacklevel=2)
        return verdict

    return check


# ------------------------------------------------------------------------------ results
def _final_report(config: pytest.Config) -> dict[str, Any] | None:
    """This process's report, or on an xdist controller the merge of its workers' reports."""
    return pytest_support.final_report(config.stash.get(_worker_reports_key, []), config.stash.get(_session_key, None))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not _active(config):
        return  # workers hand their rows to the controller, which prints one table
    report = _final_report(config)
    if report is None:
        return
    loads = config.stash.get(_worker_loads_key, None)
    pytest_support.write_summary(terminalreporter, report, loads, config.getoption("dist", "no"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not _active(config):
        return
    if hasattr(config, "workerinput"):
        trust = config.stash.get(_session_key, None)
        if trust is not None and trust.rows:
            config.workeroutput["comptrust_report"] = json.dumps(trust.report())
            config.workeroutput["comptrust_flips"] = json.dumps(trust.flips())
            config.workeroutput["comptrust_answers"] = json.dumps(trust.answer_blocks())
            config.workeroutput["comptrust_loads"] = json.dumps(trust.loads)
        return
    report = _final_report(config)
    if report is None:
        return
    trust = config.stash.get(_session_key, None)
    flips = pytest_support.gathered(config.stash.get(_worker_flips_key, None), trust, "flips")
    parts = pytest_support.gathered(config.stash.get(_worker_answers_key, None), trust, "answer_blocks")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if pytest_support.corrected_fails(report, reporter) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # the correction failed verdicts their tests passed
    if not pytest_support.write_outputs(config.stash[_options_key], report, flips, reporter, parts) and not exitstatus:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # an asked-for output is missing


class XdistHooks:
    """Registered only in a trust run with pytest-xdist active: collect each worker's report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._gpus: list[str] | None = None

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        """Hand each worker its GPU (an entry of the caller's list) and the grouping, before it starts."""
        from . import devices, distribution

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
            self.config.stash.setdefault(_worker_answers_key, []).extend(json.loads(output["comptrust_answers"]))
        if output.get("comptrust_loads"):
            worker = node.workerinput.get("workerid", "?")
            self.config.stash.setdefault(_worker_loads_key, {})[worker] = json.loads(output["comptrust_loads"])

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A worker's terminal is not shown: print what each trust test computed and what it read
        from the cache when its report reaches the controller."""
        line = pytest_support.worker_test_line(report)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if line and reporter is not None and self.config.getoption("verbose", 0) >= -1:
            reporter.write_line(line)
