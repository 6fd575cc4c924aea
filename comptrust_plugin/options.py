"""Every option of a trust run in one place: its flag, help and ini key, how it parses, how it is checked.

`OPTIONS` declares the command-line flags (the plugin registers them as they are; a standalone
script can too); `read_options(value)` turns the raw values, however obtained, into a checked,
frozen `TrustOptions`. Torch-free: a bad option is a one-line TrustError before any model loads.
Light to import: the plugin declares these flags in every pytest session of the environment, so
the checks import the science they need (specs, gate, dimensions, data sources) only when called.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import TrustError, one_line
from .models.chat import check_chat_format
from .models.registry import DEFAULT_MODEL, INSTALL_HINTS, ModelEntry, known_models, resolve_model, with_chat_format
from .storage import user_path

if TYPE_CHECKING:
    from .gate import Tolerance
    from .spec import CompressionSpec

DTYPE_NAMES = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
# The gate's defaults (gate.REFUSAL_SHIFT_FLAG, paired.BOOTSTRAP_REPLICATES; a test keeps them equal)
REFUSAL_SHIFT_DEFAULT = 10.0
BOOTSTRAP_DEFAULT = 1000
COMMAND_LINE_ONLY = "command line only: a checked-in file must not turn it on"


@dataclass(frozen=True)
class OptionSpec:
    """One command-line flag and its ini key of the same name as `dest`.

    `ini` is the ini key's default (None: the flag has no ini key, `COMMAND_LINE_ONLY` says why);
    `kind` is "value", "append" (repeatable, comma-separated) or "flag" (on/off: an ini bool);
    `path`: the value names a file or folder; `alias`: a short name registered too where no other
    plugin or conftest defines it (`--model` for `--trust-model`)."""

    flag: str
    dest: str
    help: str
    ini: str | None = ""
    kind: Literal["value", "append", "flag"] = "value"
    path: bool = False
    alias: str | None = None


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "--trust-model", "trust_model",
        f"model alias ({known_models()}), hub id or local directory; default {DEFAULT_MODEL}", DEFAULT_MODEL,
        path=True, alias="--model",
    ),
    OptionSpec(
        "--trust-compress", "trust_compress",
        "compression spec(s), e.g. wanda-50,gptq-4 (repeatable); omit for a dense-only profile",
        kind="append", alias="--compress",
    ),
    OptionSpec(
        "--trust-chat-format", "trust_chat_format",
        "prompt layout: auto (default: the model's own; a chat template that rejects a system role gets "
        "the system text folded into the first user turn), template, plain, vicuna or llama2", "auto",
    ),
    OptionSpec(
        "--trust-tolerance", "trust_tolerance",
        "allowed score drop: points (5) or percent of the dense score (5%: recovery >= 95%), "
        "or per dimension: 5,toxicity=3,fairness=10%", "5",
    ),
    OptionSpec(
        "--trust-floor", "trust_floor",
        "warn-only score levels per dimension, e.g. toxicity=80,privacy=60: a compressed score under its "
        "floor is flagged in the table and report, not failed", "",
    ),
    OptionSpec(
        "--trust-samples", "trust_samples", "probe-set size: smoke (default), full, or an integer cap", "smoke",
    ),
    OptionSpec("--trust-device", "trust_device", "auto (default), cpu, cuda or cuda:N", "auto"),
    OptionSpec(
        "--trust-dtype", "trust_dtype",
        "auto (bf16 where the hardware computes it natively; else fp16 on GPUs, fp32 on CPUs), fp32, bf16, fp16",
        "auto",
    ),
    OptionSpec("--trust-seed", "trust_seed", "seed for sampling and subsampling (default 0)", "0"),
    OptionSpec(
        "--trust-cache-dir", "trust_cache_dir", "cache folder (default $COMPTRUST_CACHE_DIR or ~/.cache/comptrust)",
        path=True,
    ),
    OptionSpec("--trust-report", "trust_report", "write the results as JSON to this path", path=True),
    OptionSpec(
        "--trust-scoring", "trust_scoring", "scoring variant: comptrust-paper (default) or dt (DecodingTrust)",
        "comptrust-paper",
    ),
    OptionSpec(
        "--trust-data", "trust_data",
        "probe data: shipped (default), decodingtrust[@REVISION] (DecodingTrust's data from the hub, "
        "through datasets) or PATH (a local copy laid out like its data/ folder)", "shipped", path=True,
    ),
    OptionSpec(
        "--trust-strict-data", "trust_strict_data",
        "refuse a --trust-data source that lacks part of a dimension (e.g. one adversarial-demonstration "
        "family) instead of running the parts present", kind="flag",
    ),
    OptionSpec(
        "--trust-toxicity-scorer", "trust_toxicity_scorer",
        "toxicity scorer: profanity-check (default, offline), perspective ($PERSPECTIVE_API_KEY), hf:MODEL",
        "profanity-check",
    ),
    OptionSpec(
        "--trust-remote-code", "trust_remote_code",
        "allow model repositories to run their own Python code (off by default)", None, kind="flag",
    ),
    OptionSpec(
        "--trust-allow-pickle", "trust_allow_pickle",
        "read checkpoints that have pickle weights only, with torch.load(weights_only=True) (off by default)",
        None, kind="flag",
    ),
    OptionSpec(
        "--trust-gate", "trust_gate",
        "point (default: fail when the score drop exceeds the tolerance) or confident (fail only when "
        "the whole bootstrap interval does; 'inconclusive' when it straddles the tolerance)", "point",
    ),
    OptionSpec(
        "--trust-fail-on-inconclusive", "trust_fail_on_inconclusive",
        "an inconclusive verdict (confident gate) fails the test instead of passing with a warning", kind="flag",
    ),
    OptionSpec(
        "--trust-multiplicity", "trust_multiplicity",
        "confident gate: correction across the run's verdicts, holm (default: family-wise error), bh "
        "(Benjamini-Hochberg: false discovery rate) or none (each verdict at its own 95% interval)", "holm",
    ),
    OptionSpec(
        "--trust-bootstrap", "trust_bootstrap",
        f"paired bootstrap replicates for the interval of each delta (default {BOOTSTRAP_DEFAULT}; 0 = none)",
        str(BOOTSTRAP_DEFAULT),
    ),
    OptionSpec(
        "--trust-interval", "trust_interval",
        "bootstrap interval: percentile (default) or bca (bias-corrected and accelerated; covers a "
        "parity-gap score better, an accuracy near 0 or 100 no better: benchmarks/bench_interval_coverage.py)",
        "percentile",
    ),
    OptionSpec(
        "--trust-refusal-shift", "trust_refusal_shift",
        f"flag refusal-rate shifts above this many points (default {REFUSAL_SHIFT_DEFAULT:g})",
        f"{REFUSAL_SHIFT_DEFAULT:g}",
    ),
    OptionSpec(
        "--trust-fail-on-refusal-shift", "trust_fail_on_refusal_shift",
        "a flagged refusal-rate shift fails the test", kind="flag",
    ),
    OptionSpec(
        "--trust-baseline", "trust_baseline",
        "stored dense results (JSON) to gate against instead of running the dense model; "
        "created (and the test fails, for review) when missing", path=True,
    ),
    OptionSpec(
        "--trust-update-baseline", "trust_update_baseline",
        "recompute the dense results and rewrite --trust-baseline (the tests fail, for review)", kind="flag",
    ),
    OptionSpec(
        "--trust-markdown", "trust_markdown",
        "append a Markdown summary (for CI job summaries, e.g. $GITHUB_STEP_SUMMARY) to this path", path=True,
    ),
    OptionSpec(
        "--trust-plot", "trust_plot", "write a radar chart (PNG) of dense vs every config to this .png path",
        path=True,
    ),
    OptionSpec(
        "--trust-flips", "trust_flips", "write every item whose answer changed (JSON lines, both outputs) to this path",
        path=True,
    ),
    OptionSpec(
        "--trust-answers", "trust_answers",
        "write every item of every verdict (JSON lines: item id, prompt hash, both outputs and parsed answers, "
        "correctness, toxicity, refusals) to this path, replaced each run; the flips are a subset", path=True,
    ),
    OptionSpec("--trust-answers-prompts", "trust_answers_prompts", "--trust-answers records carry each prompt too",
               kind="flag"),
    OptionSpec(
        "--trust-csv", "trust_csv",
        "append one row per (model, revision, config, dimension) to this CSV sheet (header once; safe "
        "under xdist and concurrent runs)", path=True,
    ),
    OptionSpec(
        "--trust-lm-eval", "trust_lm_eval",
        "write lm-evaluation-harness results files to DIR/<model>[__<config>]/results_<time>.json, one per "
        "model evaluated (tasks comptrust_<dimension>, metric score with its bootstrap standard error)", path=True,
    ),
    OptionSpec(
        "--trust-export", "trust_export",
        "write each compressed config as a checkpoint to DIR/<config id>/ (compressed-tensors for quantized "
        "and fp8 / int8 configs, bitsandbytes for nf4 / fp4), its model card naming the gate's verdicts", path=True,
    ),
    OptionSpec(
        "--trust-backend", "trust_backend",
        "inference backend: hf (default) or vllm (CUDA GPUs; pip install 'comptrust[vllm]')", "hf",
    ),
    OptionSpec(
        "--trust-batch-tokens", "trust_batch_tokens",
        "token slots per generation batch (default 32768 on a GPU, 8192 on a CPU); lower it after an OOM",
    ),
)


def options_table() -> str:
    """The README's table of options, generated from `OPTIONS` (a test keeps the README equal to it)."""
    lines = ["| option | ini key | meaning |", "|---|---|---|"]
    for option in OPTIONS:
        flag = f"`{option.flag}`" + (f" (or `{option.alias}`)" if option.alias else "")
        if option.ini is None:
            ini = f"none ({COMMAND_LINE_ONLY})"
        elif option.kind == "flag":
            ini = f"`{option.dest} = true`"
        else:
            ini = f"`{option.dest}`"
        lines.append(f"| {flag} | {ini} | {option.help.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def _gate() -> Any:
    """The gate module (imported when options are read or checked, not when they are declared)."""
    from . import gate

    return gate


def default_cache_dir() -> Path:
    env = os.environ.get("COMPTRUST_CACHE_DIR")
    if env:
        return user_path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "comptrust"


def parse_samples(text: str | int) -> str | int:
    value = str(text).strip().lower()
    if value in ("smoke", "full"):
        return value
    if value.isascii() and value.isdigit() and int(value) > 0:
        return int(value)
    raise TrustError(f"--trust-samples={one_line(text)}: use smoke, full, or a positive integer cap per dimension")


@dataclass(frozen=True)
class TrustOptions:
    model: str = DEFAULT_MODEL
    specs: tuple[CompressionSpec, ...] = ()
    tolerance: Tolerance = field(default_factory=lambda: _gate().Tolerance())
    floors: dict[str, float] = field(default_factory=dict)  # warn-only levels (--trust-floor)
    samples: str | int = "smoke"
    device: str = "auto"
    dtype: str = "auto"
    seed: int = 0
    cache_dir: Path = field(default_factory=default_cache_dir)
    variant: str = "comptrust-paper"
    trust_remote_code: bool = False
    allow_pickle: bool = False  # read pickle-only checkpoints (torch.load with weights_only=True)
    toxicity_scorer: str = "profanity-check"
    gate: str = "point"
    bootstrap: int = BOOTSTRAP_DEFAULT  # replicates of the paired bootstrap; 0 = no interval
    interval: str = "percentile"  # the bootstrap interval's method: percentile or bca
    multiplicity: str = "holm"  # confident gate: holm, bh or none (multiplicity.py)
    family: int = 1  # gated (config, dimension) tests collected in this run (set at collection)
    refusal_shift: float = REFUSAL_SHIFT_DEFAULT  # flag refusal-rate shifts above this many points
    fail_on_refusal_shift: bool = False
    fail_on_inconclusive: bool = False  # an inconclusive verdict fails instead of warning
    # probe data: shipped, decodingtrust[@REVISION] (the hub) or a folder like DecodingTrust's data/
    data: str = "shipped"
    strict_data: bool = False  # a data source lacking part of a dimension is an error, not a note
    baseline: Path | None = None  # stored dense results to gate against instead of a dense run
    update_baseline: bool = False
    backend: str = "hf"  # inference backend: hf, or vllm (CUDA only; an extra)
    batch_tokens: int | None = None  # token slots per HF batch; None = the backend's default
    report: Path | None = None  # where the JSON report, the Markdown summary (appended), the radar
    markdown: Path | None = None  # plot (PNG) and the flipped items (JSON lines) go
    plot: Path | None = None
    flips: Path | None = None
    answers: Path | None = None  # every item's answers (answers.py), with prompts when answers_prompts
    answers_prompts: bool = False
    csv: Path | None = None  # a CSV sheet the run appends its rows to (results_csv.py)
    lm_eval: Path | None = None  # a folder of lm-eval results files, one per model (lm_eval_results.py)
    export: Path | None = None  # a folder: each compressed config written as a checkpoint (compress/export.py)
    chat_format: str = "auto"  # prompt layout: auto (the model registry's choice), template, plain, vicuna, llama2

    def validate(self) -> ModelEntry:
        """Torch-free checks of every option; returns the resolved model entry."""
        from . import dimensions
        from .decodingtrust import parse_data_option
        from .engine.vllm import check_backend
        from .scorers import check_scorer_name

        _gate().parse_gate(self.gate)
        if self.bootstrap < 0 or 0 < self.bootstrap < 100:
            raise TrustError(f"--trust-bootstrap={self.bootstrap}: use 0 (no interval) or at least 100 replicates")
        if not 0 <= self.refusal_shift <= 100:
            raise TrustError(f"--trust-refusal-shift={self.refusal_shift:g}: use 0..100 points")
        if self.update_baseline and self.baseline is None:
            raise TrustError("--trust-update-baseline needs --trust-baseline=PATH (the file to write)")
        if not _DEVICE.match(self.device):
            raise TrustError(f"--trust-device={self.device}: use auto, cpu, cuda or cuda:N")
        if self.dtype not in DTYPE_NAMES:
            raise TrustError(f"--trust-dtype={self.dtype}: choose one of {', '.join(DTYPE_NAMES)}")
        if self.variant not in dimensions.VARIANTS:
            raise TrustError(f"--trust-scoring={self.variant}: choose one of {', '.join(dimensions.VARIANTS)}")
        check_scorer_name(self.toxicity_scorer)
        parse_data_option(self.data)
        from .multiplicity import parse_method

        parse_method(self.multiplicity)
        if self.interval not in _gate().INTERVAL_METHODS:
            raise TrustError(f"--trust-interval={one_line(str(self.interval))}: choose one of "
                             f"{', '.join(_gate().INTERVAL_METHODS)}")
        if self.batch_tokens is not None and self.batch_tokens < 64:
            raise TrustError(f"--trust-batch-tokens={self.batch_tokens}: use at least 64 token slots")
        if self.backend == "vllm" and importlib.util.find_spec("compressed_tensors") is None:
            # vLLM quantizes activations as a compressed-tensors checkpoint's config says: the store
            # writes fp8-dyn / int8-w8a8 as one (export.save_weights) only with the package there
            for spec in self.specs:
                if spec.activations is not None:
                    raise TrustError(f"--trust-compress={spec.canonical} quantizes activations at run time, which "
                                     "vLLM does from a compressed-tensors checkpoint, stored as one only with "
                                     f"compressed-tensors installed; run: {INSTALL_HINTS['compressed_tensors']} "
                                     "(or use --trust-backend=hf)")
        check_backend(self.backend, self.device)
        check_chat_format(self.chat_format)
        return with_chat_format(resolve_model(self.model), self.chat_format)


def _whole_number(flag: str, text: Any, hint: str) -> int:
    if not (str(text).isascii() and str(text).isdigit()):
        raise TrustError(f"{flag}={text}: {hint}")
    return int(text)


def read_options(value: Callable[[str], Any]) -> TrustOptions:
    """Parse the raw option values into TrustOptions. `value(dest)` gives an option's command-line
    value, or its ini value where it has an ini key and the command line left it unset."""
    from . import dimensions
    from .spec import parse_specs

    compress = [c for c in (value("trust_compress") or []) if c.strip()]
    seed = _whole_number("--trust-seed", value("trust_seed") or "0", "use a non-negative integer")
    bootstrap = _whole_number(
        "--trust-bootstrap", value("trust_bootstrap"), "use a whole number of replicates (0 = no interval)"
    )
    shift_text = str(value("trust_refusal_shift"))
    try:
        refusal_shift = float(shift_text)
    except ValueError:
        raise TrustError(f"--trust-refusal-shift={shift_text}: use a number of points, e.g. 10") from None
    batch_text = value("trust_batch_tokens")
    batch_tokens = None
    if batch_text not in (None, ""):
        batch_tokens = _whole_number(
            "--trust-batch-tokens", batch_text, "use a whole number of token slots, e.g. 8192"
        )
    cache_dir, baseline = value("trust_cache_dir"), value("trust_baseline")
    return TrustOptions(
        model=value("trust_model"),
        specs=tuple(parse_specs(compress)),
        tolerance=_gate().parse_tolerance(value("trust_tolerance"), dimensions.names()),
        floors=_gate().parse_floors(value("trust_floor") or "", dimensions.names()),
        samples=parse_samples(value("trust_samples")),
        device=value("trust_device"),
        dtype=value("trust_dtype"),
        seed=seed,
        cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
        variant=value("trust_scoring"),
        data=value("trust_data"),
        strict_data=bool(value("trust_strict_data")),
        trust_remote_code=bool(value("trust_remote_code")),
        allow_pickle=bool(value("trust_allow_pickle")),
        toxicity_scorer=value("trust_toxicity_scorer"),
        gate=value("trust_gate"),
        bootstrap=bootstrap,
        interval=value("trust_interval") or "percentile",
        multiplicity=value("trust_multiplicity") or "holm",
        refusal_shift=refusal_shift,
        fail_on_refusal_shift=bool(value("trust_fail_on_refusal_shift")),
        fail_on_inconclusive=bool(value("trust_fail_on_inconclusive")),
        baseline=Path(baseline) if baseline else None,
        update_baseline=bool(value("trust_update_baseline")),
        backend=value("trust_backend") or "hf",
        batch_tokens=batch_tokens,
        chat_format=value("trust_chat_format") or "auto",
        answers_prompts=bool(value("trust_answers_prompts")),
        **{name: _path(value(f"trust_{name}"))
           for name in ("report", "markdown", "plot", "flips", "answers", "csv", "lm_eval", "export")},
    )


def _path(text: str | None) -> Path | None:
    return user_path(text) if text else None
