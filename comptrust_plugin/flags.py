"""Every flag of a trust run in one place: its name, help and ini key, and the README table made from them.

Declared in every pytest session of the environment (the plugin registers them), so this module
imports nothing heavy; options.py parses and checks the values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .models.registry import DEFAULT_MODEL, known_models

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
        "--trust-calibration-seeds", "trust_calibration_seeds",
        "build each calibrated config (wanda, sparsegpt, gptq, awq, int8-w8a8) this many times with different "
        "calibration windows (seeds N, N+1, ...) and gate their mean with an interval over seeds and items "
        "(default 1; the study used 3)", "1",
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
        "--trust-shard", "trust_shard",
        "run shard I of N (1..N) of the trust tests, e.g. 2/4 (a Slurm array, a CI matrix); join the N "
        "reports with `comptrust merge`",
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
