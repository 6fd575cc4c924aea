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
from .gate import BOOTSTRAP_REPLICATES, REFUSAL_SHIFT_FLAG, parse_tolerance
from .models.registry import DEFAULT_MODEL, known_models
from .report import (
    merge_reports,
    render_matrix,
    render_table,
    write_flips,
    write_json_report,
    write_markdown,
    write_radar_plot,
)
from .session import TrustOptions, TrustSession, default_cache_dir, parse_samples
from .spec import SpecError, parse_specs

DIMENSION_NAMES = (
    "toxicity", "stereotype_bias", "adversarial_robustness", "ood_robustness",
    "adversarial_demonstrations", "privacy", "machine_ethics", "fairness", "benign_utility",
)

_session_key = pytest.StashKey[TrustSession]()
_options_key = pytest.StashKey[TrustOptions]()
_worker_reports_key = pytest.StashKey[list[dict[str, Any]]]()
_worker_flips_key = pytest.StashKey[list[dict[str, Any]]]()
_worker_loads_key = pytest.StashKey[dict[str, dict[str, int]]]()
_LOADGROUP_KEY = "comptrust_loadgroup"  # workerinput: the controller runs --dist loadgroup


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("comptrust", "comptrust: trust gates for compressed LLMs")
    group.addoption(
        "--model", dest="trust_model", default=None,
        help=f"model alias ({known_models()}), hub id or local directory; default {DEFAULT_MODEL}",
    )
    group.addoption(
        "--compress", dest="trust_compress", action="append", default=None,
        help="compression spec(s), e.g. wanda-50,gptq-4 (repeatable); omit for a dense-only profile",
    )
    group.addoption(
        "--trust-tolerance", default=None,
        help="allowed score drop in points: 5, or per dimension: 5,toxicity=3,fairness=10",
    )
    group.addoption(
        "--trust-samples", default=None, help="probe-set size: smoke (default), full, or an integer cap",
    )
    group.addoption("--trust-device", default=None, help="auto (default), cpu, cuda or cuda:N")
    group.addoption("--trust-dtype", default=None, help="auto (bf16; fp16 on GPUs without bf16), fp32, bf16, fp16")
    group.addoption("--trust-seed", default=None, help="seed for sampling and subsampling (default 0)")
    group.addoption(
        "--trust-cache-dir", default=None, help="cache folder (default $COMPTRUST_CACHE_DIR or ~/.cache/comptrust)"
    )
    group.addoption("--trust-report", default=None, help="write the results as JSON to this path")
    group.addoption(
        "--trust-scoring", default=None, help="scoring variant: comptrust-paper (default) or dt (DecodingTrust)",
    )
    group.addoption(
        "--trust-data", default=None,
        help="probe data: shipped (default), decodingtrust[@REVISION] (DecodingTrust's data from the hub, "
        "through datasets) or PATH (a local copy laid out like its data/ folder)",
    )
    group.addoption(
        "--trust-toxicity-scorer", default=None,
        help="toxicity scorer: profanity-check (default, offline), perspective ($PERSPECTIVE_API_KEY), hf:MODEL",
    )
    group.addoption(
        "--trust-remote-code", action="store_true", default=False,
        help="allow model repositories to run their own Python code (off by default)",
    )
    group.addoption(
        "--trust-allow-pickle", action="store_true", default=False,
        help="read checkpoints that have pickle weights only, with torch.load(weights_only=True) (off by default)",
    )
    group.addoption(
        "--trust-gate", default=None,
        help="point (default: fail when the score drop exceeds the tolerance) or confident (fail only when "
        "the whole bootstrap interval does; 'inconclusive' when it straddles the tolerance)",
    )
    group.addoption(
        "--trust-bootstrap", default=None,
        help=f"paired bootstrap replicates for the interval of each delta (default {BOOTSTRAP_REPLICATES}; 0 = none)",
    )
    group.addoption(
        "--trust-refusal-shift", default=None,
        help=f"flag refusal-rate shifts above this many points (default {REFUSAL_SHIFT_FLAG:g})",
    )
    group.addoption(
        "--trust-fail-on-refusal-shift", action="store_true", default=False,
        help="a flagged refusal-rate shift fails the test",
    )
    group.addoption(
        "--trust-baseline", default=None,
        help="stored dense results (JSON) to gate against instead of running the dense model; "
        "created (and the test fails, for review) when missing",
    )
    group.addoption(
        "--trust-update-baseline", action="store_true", default=False,
        help="recompute the dense results and rewrite --trust-baseline (the tests fail, for review)",
    )
    group.addoption(
        "--trust-markdown", default=None, help="write a Markdown summary (for CI job summaries) to this path",
    )
    group.addoption(
        "--trust-plot", default=None, help="write a radar chart (PNG) of dense vs every config to this path",
    )
    group.addoption(
        "--trust-backend", default=None,
        help="inference backend: hf (default) or vllm (CUDA GPUs; pip install 'comptrust[vllm]')",
    )
    group.addoption(
        "--trust-batch-tokens", default=None,
        help="token slots per generation batch (default 32768 on a GPU, 8192 on a CPU); lower it after an OOM",
    )
    group.addoption(
        "--trust-flips", default=None,
        help="write every item whose answer changed (JSON lines, both outputs) to this path",
    )
    for name, help_text, default in (
        ("trust_model", "default --model", DEFAULT_MODEL),
        ("trust_compress", "default --compress specs (comma-separated)", ""),
        ("trust_tolerance", "default --trust-tolerance", "5"),
        ("trust_samples", "default --trust-samples", "smoke"),
        ("trust_device", "default --trust-device", "auto"),
        ("trust_dtype", "default --trust-dtype", "auto"),
        ("trust_cache_dir", "default --trust-cache-dir", ""),
        ("trust_scoring", "default --trust-scoring", "comptrust-paper"),
        ("trust_data", "default --trust-data", "shipped"),
        ("trust_toxicity_scorer", "default --trust-toxicity-scorer", "profanity-check"),
        ("trust_gate", "default --trust-gate", "point"),
        ("trust_bootstrap", "default --trust-bootstrap", str(BOOTSTRAP_REPLICATES)),
        ("trust_refusal_shift", "default --trust-refusal-shift", f"{REFUSAL_SHIFT_FLAG:g}"),
    ):
        parser.addini(name, help_text, default=default)


def _value(config: pytest.Config, option: str, ini: str | None = None) -> Any:
    value = config.getoption(option)
    if value is None and ini is not None:
        value = config.getini(ini)
    return value


def _options(config: pytest.Config) -> TrustOptions:
    compress = config.getoption("trust_compress") or [config.getini("trust_compress") or ""]
    compress = [c for c in compress if c.strip()]
    seed_text = config.getoption("trust_seed") or "0"
    if not (str(seed_text).isascii() and str(seed_text).isdigit()):
        raise TrustError(f"--trust-seed={seed_text}: use a non-negative integer")
    cache_dir = _value(config, "trust_cache_dir", "trust_cache_dir")
    bootstrap_text = str(_value(config, "trust_bootstrap", "trust_bootstrap"))
    if not (bootstrap_text.isascii() and bootstrap_text.isdigit()):
        raise TrustError(f"--trust-bootstrap={bootstrap_text}: use a whole number of replicates (0 = no interval)")
    shift_text = str(_value(config, "trust_refusal_shift", "trust_refusal_shift"))
    try:
        refusal_shift = float(shift_text)
    except ValueError:
        raise TrustError(f"--trust-refusal-shift={shift_text}: use a number of points, e.g. 10") from None
    baseline = config.getoption("trust_baseline")
    batch_text = config.getoption("trust_batch_tokens")
    if batch_text is not None and not (batch_text.isascii() and batch_text.isdigit()):
        raise TrustError(f"--trust-batch-tokens={batch_text}: use a whole number of token slots, e.g. 8192")
    return TrustOptions(
        model=_value(config, "trust_model", "trust_model"),
        specs=tuple(parse_specs(compress)),
        tolerance=parse_tolerance(_value(config, "trust_tolerance", "trust_tolerance"), DIMENSION_NAMES),
        samples=parse_samples(_value(config, "trust_samples", "trust_samples")),
        device=_value(config, "trust_device", "trust_device"),
        dtype=_value(config, "trust_dtype", "trust_dtype"),
        seed=int(seed_text),
        cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
        variant=_value(config, "trust_scoring", "trust_scoring"),
        data=_value(config, "trust_data", "trust_data"),
        trust_remote_code=bool(config.getoption("trust_remote_code")),
        allow_pickle=bool(config.getoption("trust_allow_pickle")),
        toxicity_scorer=_value(config, "trust_toxicity_scorer", "trust_toxicity_scorer"),
        gate=_value(config, "trust_gate", "trust_gate"),
        bootstrap=int(bootstrap_text),
        refusal_shift=refusal_shift,
        fail_on_refusal_shift=bool(config.getoption("trust_fail_on_refusal_shift")),
        baseline=Path(baseline) if baseline else None,
        update_baseline=bool(config.getoption("trust_update_baseline")),
        backend=config.getoption("trust_backend") or "hf",
        batch_tokens=int(batch_text) if batch_text is not None else None,
    )


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
    device = _value(config, "trust_device", "trust_device")
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
