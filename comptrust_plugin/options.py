"""Every option of a trust run in one place: its flag, help and ini key, how it parses, how it is checked.

`OPTIONS` declares the command-line flags (the plugin registers them as they are; a standalone
script can too); `read_options(value)` turns the raw values, however obtained, into a checked,
frozen `TrustOptions`. Torch-free: a bad option is a one-line TrustError before any model loads.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import dimensions
from .decodingtrust import parse_data_option
from .engine.vllm import check_backend
from .errors import TrustError, one_line
from .gate import BOOTSTRAP_REPLICATES, REFUSAL_SHIFT_FLAG, Tolerance, parse_gate, parse_tolerance
from .models.registry import DEFAULT_MODEL, ModelEntry, known_models, resolve_model
from .scorers import check_scorer_name
from .spec import CompressionSpec, parse_specs
from .storage import user_path

DTYPE_NAMES = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


@dataclass(frozen=True)
class OptionSpec:
    """One command-line flag; `ini` is the default of its ini key of the same name (None: no ini key)."""

    flag: str
    dest: str
    help: str
    ini: str | None = None
    action: str | None = None  # "store_true" or "append"; None = a value


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "--model", "trust_model",
        f"model alias ({known_models()}), hub id or local directory; default {DEFAULT_MODEL}", DEFAULT_MODEL,
    ),
    OptionSpec(
        "--compress", "trust_compress",
        "compression spec(s), e.g. wanda-50,gptq-4 (repeatable); omit for a dense-only profile", "", "append",
    ),
    OptionSpec(
        "--trust-tolerance", "trust_tolerance",
        "allowed score drop in points: 5, or per dimension: 5,toxicity=3,fairness=10", "5",
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
    OptionSpec("--trust-seed", "trust_seed", "seed for sampling and subsampling (default 0)"),
    OptionSpec(
        "--trust-cache-dir", "trust_cache_dir", "cache folder (default $COMPTRUST_CACHE_DIR or ~/.cache/comptrust)", "",
    ),
    OptionSpec("--trust-report", "trust_report", "write the results as JSON to this path"),
    OptionSpec(
        "--trust-scoring", "trust_scoring", "scoring variant: comptrust-paper (default) or dt (DecodingTrust)",
        "comptrust-paper",
    ),
    OptionSpec(
        "--trust-data", "trust_data",
        "probe data: shipped (default), decodingtrust[@REVISION] (DecodingTrust's data from the hub, "
        "through datasets) or PATH (a local copy laid out like its data/ folder)", "shipped",
    ),
    OptionSpec(
        "--trust-toxicity-scorer", "trust_toxicity_scorer",
        "toxicity scorer: profanity-check (default, offline), perspective ($PERSPECTIVE_API_KEY), hf:MODEL",
        "profanity-check",
    ),
    OptionSpec(
        "--trust-remote-code", "trust_remote_code",
        "allow model repositories to run their own Python code (off by default)", action="store_true",
    ),
    OptionSpec(
        "--trust-allow-pickle", "trust_allow_pickle",
        "read checkpoints that have pickle weights only, with torch.load(weights_only=True) (off by default)",
        action="store_true",
    ),
    OptionSpec(
        "--trust-gate", "trust_gate",
        "point (default: fail when the score drop exceeds the tolerance) or confident (fail only when "
        "the whole bootstrap interval does; 'inconclusive' when it straddles the tolerance)", "point",
    ),
    OptionSpec(
        "--trust-bootstrap", "trust_bootstrap",
        f"paired bootstrap replicates for the interval of each delta (default {BOOTSTRAP_REPLICATES}; 0 = none)",
        str(BOOTSTRAP_REPLICATES),
    ),
    OptionSpec(
        "--trust-refusal-shift", "trust_refusal_shift",
        f"flag refusal-rate shifts above this many points (default {REFUSAL_SHIFT_FLAG:g})", f"{REFUSAL_SHIFT_FLAG:g}",
    ),
    OptionSpec(
        "--trust-fail-on-refusal-shift", "trust_fail_on_refusal_shift",
        "a flagged refusal-rate shift fails the test", action="store_true",
    ),
    OptionSpec(
        "--trust-baseline", "trust_baseline",
        "stored dense results (JSON) to gate against instead of running the dense model; "
        "created (and the test fails, for review) when missing",
    ),
    OptionSpec(
        "--trust-update-baseline", "trust_update_baseline",
        "recompute the dense results and rewrite --trust-baseline (the tests fail, for review)", action="store_true",
    ),
    OptionSpec("--trust-markdown", "trust_markdown", "write a Markdown summary (for CI job summaries) to this path"),
    OptionSpec("--trust-plot", "trust_plot", "write a radar chart (PNG) of dense vs every config to this path"),
    OptionSpec(
        "--trust-backend", "trust_backend",
        "inference backend: hf (default) or vllm (CUDA GPUs; pip install 'comptrust[vllm]')",
    ),
    OptionSpec(
        "--trust-batch-tokens", "trust_batch_tokens",
        "token slots per generation batch (default 32768 on a GPU, 8192 on a CPU); lower it after an OOM",
    ),
    OptionSpec(
        "--trust-strict-data", "trust_strict_data",
        "refuse a --trust-data source that lacks part of a dimension (e.g. one adversarial-demonstration "
        "family) instead of running the parts present", action="store_true",
    ),
    OptionSpec(
        "--trust-flips", "trust_flips", "write every item whose answer changed (JSON lines, both outputs) to this path",
    ),
)


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
    tolerance: Tolerance = field(default_factory=Tolerance)
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
    bootstrap: int = BOOTSTRAP_REPLICATES  # replicates of the paired bootstrap; 0 = no interval
    refusal_shift: float = REFUSAL_SHIFT_FLAG  # flag refusal-rate shifts above this many points
    fail_on_refusal_shift: bool = False
    # probe data: shipped, decodingtrust[@REVISION] (the hub) or a folder like DecodingTrust's data/
    data: str = "shipped"
    strict_data: bool = False  # a data source lacking part of a dimension is an error, not a note
    baseline: Path | None = None  # stored dense results to gate against instead of a dense run
    update_baseline: bool = False
    backend: str = "hf"  # inference backend: hf, or vllm (CUDA only; an extra)
    batch_tokens: int | None = None  # token slots per HF batch; None = the backend's default

    def validate(self) -> ModelEntry:
        """Torch-free checks of every option; returns the resolved model entry."""
        parse_gate(self.gate)
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
        if self.batch_tokens is not None and self.batch_tokens < 64:
            raise TrustError(f"--trust-batch-tokens={self.batch_tokens}: use at least 64 token slots")
        check_backend(self.backend, self.device)
        return resolve_model(self.model)


def _whole_number(flag: str, text: Any, hint: str) -> int:
    if not (str(text).isascii() and str(text).isdigit()):
        raise TrustError(f"{flag}={text}: {hint}")
    return int(text)


def read_options(value: Callable[[str], Any]) -> TrustOptions:
    """Parse the raw option values into TrustOptions. `value(dest)` gives an option's command-line
    value, or its ini value where it has an ini key and the command line left it unset."""
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
    if batch_text is not None:
        batch_tokens = _whole_number(
            "--trust-batch-tokens", batch_text, "use a whole number of token slots, e.g. 8192"
        )
    cache_dir, baseline = value("trust_cache_dir"), value("trust_baseline")
    return TrustOptions(
        model=value("trust_model"),
        specs=tuple(parse_specs(compress)),
        tolerance=parse_tolerance(value("trust_tolerance"), dimensions.names()),
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
        refusal_shift=refusal_shift,
        fail_on_refusal_shift=bool(value("trust_fail_on_refusal_shift")),
        baseline=Path(baseline) if baseline else None,
        update_baseline=bool(value("trust_update_baseline")),
        backend=value("trust_backend") or "hf",
        batch_tokens=batch_tokens,
    )
