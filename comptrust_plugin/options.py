"""A trust run's options: how each parses and how it is checked, into one frozen TrustOptions.

`flags.OPTIONS` declares the command-line flags (the plugin registers them as they are; a
standalone script can too); `read_options(value)` turns the raw values, however obtained, into a
checked, frozen `TrustOptions`. Torch-free: a bad option is a one-line TrustError before any model loads.
Light to import: the plugin declares these flags in every pytest session of the environment, so
the checks import the science they need (specs, gate, dimensions, data sources) only when called.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import TrustError, one_line
from .flags import BOOTSTRAP_DEFAULT, REFUSAL_SHIFT_DEFAULT
from .models.chat import check_chat_format
from .models.registry import DEFAULT_MODEL, INSTALL_HINTS, ModelEntry, resolve_model, with_chat_format
from .storage import user_path

if TYPE_CHECKING:
    from .gate import Tolerance
    from .shards import Shard
    from .spec import CompressionSpec

DTYPE_NAMES = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
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


MAX_CALIBRATION_SEEDS = 10


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
    calibration_seeds: int = 1  # builds of each calibrated config, with seeds N, N+1, ... (their mean is gated)
    family: int = 1  # gated (config, dimension) tests collected in this run (set at collection)
    utility_configs: frozenset[str] = frozenset()  # configs whose benign utility the run gates (set at collection)
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
    shard: Shard | None = None  # --trust-shard: this job's share of the tests (shards.py)

    def report_settings(self, device: str, dtype: str, level: float | None) -> dict[str, Any]:
        """The settings a report states (`level`: the corrected level of each confident verdict)."""
        from .decodingtrust.references import REFERENCES

        return {
            "samples": self.samples, "seed": self.seed, "device": device, "dtype": dtype, "variant": self.variant,
            "scoring_reference": dataclasses.asdict(REFERENCES[self.variant]),
            "tolerance": self.tolerance.to_json(), "floors": dict(self.floors),
            "gate": self.gate, "refusal_shift_limit": self.refusal_shift,
            "multiplicity": {"method": self.multiplicity, "family": self.family, "level": level},
            "calibration_seeds": self.calibration_seeds,
            "baseline": str(self.baseline) if self.baseline else None,
        }

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
        if not 1 <= self.calibration_seeds <= MAX_CALIBRATION_SEEDS:
            raise TrustError(f"--trust-calibration-seeds={self.calibration_seeds}: use 1..{MAX_CALIBRATION_SEEDS} "
                             "(each seed is one more build and evaluation of every calibrated config)")
        if self.interval == "bca" and self.calibration_seeds > 1:
            raise TrustError("--trust-interval=bca: the interval over calibration seeds and items is a percentile "
                             "one; drop --trust-interval=bca or --trust-calibration-seeds")
        if self.interval == "bca" and self.gate == "confident" and self.multiplicity != "none":
            raise TrustError("--trust-interval=bca: the multiplicity correction's p-values come from the percentile "
                             "bootstrap; add --trust-multiplicity=none to gate on the BCa interval alone")
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
    from .shards import parse_shard
    from .spec import parse_specs

    compress = [c for c in (value("trust_compress") or []) if c.strip()]
    seed = _whole_number("--trust-seed", value("trust_seed") or "0", "use a non-negative integer")
    calibration_seeds = _whole_number(
        "--trust-calibration-seeds", value("trust_calibration_seeds") or "1", "use a whole number of seeds (1..10)"
    )
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
        calibration_seeds=calibration_seeds,
        refusal_shift=refusal_shift,
        fail_on_refusal_shift=bool(value("trust_fail_on_refusal_shift")),
        fail_on_inconclusive=bool(value("trust_fail_on_inconclusive")),
        baseline=Path(baseline) if baseline else None,
        update_baseline=bool(value("trust_update_baseline")),
        backend=value("trust_backend") or "hf",
        batch_tokens=batch_tokens,
        chat_format=value("trust_chat_format") or "auto",
        shard=parse_shard(value("trust_shard")),
        answers_prompts=bool(value("trust_answers_prompts")),
        **{name: _path(value(f"trust_{name}"))
           for name in ("report", "markdown", "plot", "flips", "answers", "csv", "lm_eval", "export")},
    )


def _path(text: str | None) -> Path | None:
    return user_path(text) if text else None
