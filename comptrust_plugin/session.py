"""One trust run: options -> model identity -> (compressed) model handles -> scored dimensions.

This is the orchestration the pytest plugin drives; it knows nothing about pytest, so the
same run can be scripted. Models load lazily: a handle whose every answer is cached never
touches weights.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from . import __version__
from .baseline import BaselineEntry, BaselineStore
from .devices import free_gpu_memory, is_out_of_memory, out_of_memory_message
from .dimensions.agreement import compare_answers
from .dimensions.result import DimensionResult
from .engine.requests import HF_NUMERICS
from .engine.vllm import check_backend
from .errors import CorruptWeights, TrustError, one_line
from .gate import (
    BOOTSTRAP_REPLICATES,
    REFUSAL_SHIFT_FLAG,
    Interval,
    Tolerance,
    Verdict,
    gate,
    paired_bootstrap,
    parse_gate,
)
from .models.chat import Message
from .models.registry import DEFAULT_MODEL, ModelEntry, resolve_model
from .report import ResultRow, RunInfo, build_report, flipped_items
from .scorers import check_scorer_name
from .spec import DEFAULT_CAL_SAMPLES, DENSE, CompressionSpec
from .storage import locked, stable_hash, user_path

VARIANTS = ("comptrust-paper", "dt")
DTYPE_NAMES = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
CHEAP_METHODS = ("mag", "rtn")  # rebuilt from dense in seconds: not stored on disk


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
        if self.variant not in VARIANTS:
            raise TrustError(f"--trust-scoring={self.variant}: choose one of {', '.join(VARIANTS)}")
        check_scorer_name(self.toxicity_scorer)
        from .data.decodingtrust import parse_data_option

        parse_data_option(self.data)
        if self.batch_tokens is not None and self.batch_tokens < 64:
            raise TrustError(f"--trust-batch-tokens={self.batch_tokens}: use at least 64 token slots")
        check_backend(self.backend, self.device)
        return resolve_model(self.model)


@dataclass
class ModelHandle:
    config: str  # "dense" or the canonical compression spec
    spec: CompressionSpec
    engine: Any  # engine.cached.CachedEngine


class TrustSession:
    def __init__(self, options: TrustOptions) -> None:
        self.options = options
        self.entry = options.validate()
        self.cache_dir = user_path(options.cache_dir)
        self._device: Any = None
        self._dtype: Any = None
        self._model_identity: dict[str, Any] | None = None
        self._cache: Any = None
        self._tokenizers: dict[str, Any] = {}
        self._handles: dict[str, ModelHandle] = {}
        self._probes: dict[str, Any] = {}
        self._scorer: Any = None
        self._results: dict[tuple[str, str], DimensionResult] = {}
        self._selected: dict[str, Any] = {}
        self._seconds: dict[tuple[str, str], float] = {}
        self._baseline: BaselineStore | None = None
        self.rows: list[ResultRow] = []
        self.events: list[str] = []  # human-readable notes for the summary (loads, builds)
        self.loads: dict[str, int] = {}  # config -> model loads in this process (xdist grouping check)
        self._out_of_memory: dict[str, str] = {}  # config -> the OOM message that stopped it here

    # ------------------------------------------------------------------ identity
    @property
    def device(self) -> Any:
        if self._device is None:
            from .models.loading import resolve_device

            self._device = resolve_device(self.options.device)
        return self._device

    @property
    def dtype(self) -> Any:
        if self._dtype is None:
            from .models.loading import resolve_dtype

            self._dtype = resolve_dtype(self.options.dtype, self.device)
        return self._dtype

    @property
    def model_identity(self) -> dict[str, Any]:
        if self._model_identity is None:
            from .models.identity import model_identity

            self._model_identity = model_identity(self.entry, self.cache_dir)
        return self._model_identity

    def _runtime_identity(self) -> dict[str, Any]:
        from .models.loading import dtype_name

        return {"device": self.device.type, "dtype": dtype_name(self.dtype)}

    def artifact_identity(self, spec: CompressionSpec) -> dict[str, Any]:
        from .compress.apply import compression_identity

        spec = spec.for_device(self.device.type)
        return {
            "model": self.model_identity, "spec": spec.identity(),
            **compression_identity(spec), **self._runtime_identity(),
        }

    # ------------------------------------------------------------------- handles
    def handle(self, spec: CompressionSpec = DENSE) -> ModelHandle:
        key = spec.canonical
        if key not in self._handles:
            self._handles[key] = self._make_handle(spec)
        return self._handles[key]

    def release(self, handle: ModelHandle) -> None:
        """Drop a config's model once its tests are done, and give its GPU memory back."""
        if handle.engine.backend_loaded:
            handle.engine.release()
            free_gpu_memory()

    @property
    def cache(self) -> Any:
        if self._cache is None:
            from .engine.cache import ResponseCache

            self._cache = ResponseCache(self.cache_dir / "responses.sqlite3")
        return self._cache

    def _make_handle(self, spec: CompressionSpec) -> ModelHandle:
        from .engine.cached import CachedEngine

        entry = self.entry
        if spec.method == "hub":
            assert spec.hub_repo is not None
            target = spec.hub_repo + (f"@{spec.hub_revision}" if spec.hub_revision else "")
            # A pre-compressed checkpoint of the same model talks the base model's chat format.
            entry = replace(resolve_model(target), chat_format=self.entry.chat_format, is_chat=self.entry.is_chat)
            from .models.identity import model_identity

            weights: dict[str, Any] = {"checkpoint": model_identity(entry, self.cache_dir)}
        elif spec.is_dense:
            weights = {"model": self.model_identity}
        else:
            weights = self.artifact_identity(spec)
        identity = {
            "weights": weights, "chat_format": self.entry.chat_format.kind, **self._runtime_identity(),
        }
        # Only a non-default setting enters the identity, so default runs keep their cached answers;
        # the HF backend's numerics revision always does (a change to it can move bf16 answers).
        if self.options.backend != "hf":
            identity["backend"] = self.options.backend
        else:
            identity["numerics"] = HF_NUMERICS
        if self.options.batch_tokens is not None:
            identity["batch_tokens"] = self.options.batch_tokens
        return ModelHandle(
            config=spec.canonical, spec=spec,
            engine=CachedEngine(
                identity, self.cache,
                renderer=lambda: self._renderer(entry),
                backend=lambda: self._backend(spec, entry),
            ),
        )

    def _tokenizer(self, entry: ModelEntry) -> Any:
        if entry.name not in self._tokenizers:
            from .models.loading import load_tokenizer

            self._tokenizers[entry.name] = load_tokenizer(
                entry, self.cache_dir, self.options.trust_remote_code
            )
        return self._tokenizers[entry.name]

    def _renderer(self, entry: ModelEntry) -> Any:
        chat = self.entry.chat_format
        if chat.kind != "template":
            return chat.render
        tokenizer = self._tokenizer(entry)

        def apply(messages: list[dict[str, str]]) -> str:
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

        def render(messages: Sequence[Message]) -> str:
            return chat.render(messages, apply)

        return render

    def _backend(self, spec: CompressionSpec, entry: ModelEntry) -> Any:
        # One compressed model in memory at a time: configs run one after another.
        released = False
        for other in self._handles.values():
            if other.config not in ("dense", spec.canonical) and other.engine.backend_loaded:
                other.engine.release()
                released = True
        if released:
            free_gpu_memory()
        self.loads[spec.canonical] = self.loads.get(spec.canonical, 0) + 1
        if self.options.backend == "vllm":
            return self._vllm_backend(spec, entry)
        from .engine.hf import HFBackend

        loaded = self._load(spec, entry)
        return HFBackend(loaded, max_batch_tokens=self.options.batch_tokens)

    def _vllm_backend(self, spec: CompressionSpec, entry: ModelEntry) -> Any:
        """vLLM reads weights from a folder: the model's own, a hub checkpoint's, or a stored
        artifact (every compression method is stored under vLLM, the cheap ones too)."""
        from .engine.vllm import VLLMBackend
        from .models.loading import dtype_name, pretrained_source

        source, kwargs = pretrained_source(entry, self.cache_dir, self.options.trust_remote_code)
        weights, revision = source, kwargs.get("revision")
        if not (spec.is_dense or spec.method == "hub"):
            weights, revision = str(self._stored_artifact(spec.for_device(self.device.type), entry)), None
        self.events.append(f"vllm: serving {spec.canonical} from {weights}")
        return VLLMBackend.create(
            weights, revision, tokenizer=source, tokenizer_revision=kwargs.get("revision"),
            dtype=dtype_name(self.dtype), trust_remote_code=self.options.trust_remote_code,
            tokenizer_object=self._tokenizer(entry), add_special_tokens=entry.chat_format.adds_special_tokens,
        )

    def _stored_artifact(self, spec: CompressionSpec, entry: ModelEntry) -> Path:
        """The folder of a compressed model, built (with HF, then freed) once under the store's lock."""
        from .compress.apply import compress_model
        from .compress.store import ArtifactStore
        from .models.loading import load_model

        def build(tmp: Path) -> None:
            loaded = load_model(
                entry, self.cache_dir, self.device, self.dtype, trust_remote_code=self.options.trust_remote_code,
                allow_pickle=self.options.allow_pickle,
            )
            stats = compress_model(loaded.model, spec, loaded.tokenizer)
            loaded.model.save_pretrained(tmp, safe_serialization=True)
            self.events.append(f"compressed {spec.canonical} in {stats.seconds:.1f}s (stored)")

        path, _ = ArtifactStore(self.cache_dir).get_or_build(self.artifact_identity(spec), build)
        free_gpu_memory()
        return path

    def _load(self, spec: CompressionSpec, entry: ModelEntry) -> Any:
        from .compress.apply import compress_model
        from .compress.store import ArtifactStore
        from .models.loading import load_model

        asked, spec = spec, spec.for_device(self.device.type)
        if spec.is_calibrated and asked.n_samples is None and spec.cal_samples != DEFAULT_CAL_SAMPLES:
            self.events.append(
                f"{asked.canonical}: calibrated on {spec.cal_samples} x {spec.seqlen} tokens, the "
                f"{self.device.type} default (the references use {DEFAULT_CAL_SAMPLES}: "
                f"--compress={asked.canonical}-ns{DEFAULT_CAL_SAMPLES})"
            )

        def load(weights_dir: Path | None = None) -> Any:
            return load_model(
                entry, self.cache_dir, self.device, self.dtype,
                trust_remote_code=self.options.trust_remote_code, weights_dir=weights_dir,
                allow_pickle=self.options.allow_pickle,
            )

        if spec.is_dense or spec.method == "hub":
            loaded = load()
            self.events.append(f"loaded {spec.canonical} model in {loaded.load_seconds:.1f}s")
            return loaded
        if spec.method in CHEAP_METHODS:
            loaded = load()
            stats = compress_model(loaded.model, spec, loaded.tokenizer)
            self.events.append(f"compressed {spec.canonical} in {stats.seconds:.1f}s")
            return loaded
        store = ArtifactStore(self.cache_dir)
        built: dict[str, Any] = {}

        def build(tmp: Path) -> None:
            loaded = load()
            stats = compress_model(loaded.model, spec, loaded.tokenizer)
            loaded.model.save_pretrained(tmp, safe_serialization=True)
            built["loaded"], built["stats"] = loaded, stats

        identity = self.artifact_identity(spec)
        path, _ = store.get_or_build(identity, build)
        if "loaded" in built:
            self.events.append(f"compressed {spec.canonical} in {built['stats'].seconds:.1f}s (stored)")
            return built["loaded"]
        try:
            return load(weights_dir=path)
        except CorruptWeights as exc:  # same size, bad bytes: set it aside, build it again
            store.discard(path, str(exc))
        path, _ = store.get_or_build(identity, build)
        if "loaded" in built:
            self.events.append(f"compressed {spec.canonical} in {built['stats'].seconds:.1f}s (rebuilt)")
            return built["loaded"]
        return load(weights_dir=path)

    # ---------------------------------------------------------------- evaluation
    def probes(self, dimension: ModuleType) -> Any:
        if dimension.NAME not in self._probes:
            from .data.probes import load_probe_set

            self._probes[dimension.NAME] = load_probe_set(dimension.NAME, self.options.data)
        return self._probes[dimension.NAME]

    def selected(self, dimension: ModuleType) -> Any:
        """The probes this run asks (tier and seeded subsample applied)."""
        if dimension.NAME not in self._selected:
            probes = self.probes(dimension).probes
            self._selected[dimension.NAME] = dimension.select(probes, self.options.samples, self.options.seed)
        return self._selected[dimension.NAME]

    def evaluate(self, dimension: ModuleType, handle: ModelHandle) -> DimensionResult:
        key = (dimension.NAME, handle.config)
        if key not in self._results:
            if handle.config in self._out_of_memory:  # a reload would run out of memory again
                raise TrustError(self._out_of_memory[handle.config])
            # xdist workers sharing a cache compute each (weights, dimension) once, the dense
            # answers above all: whoever holds the lock computes; the others wait, then find every
            # answer cached and never load the model for it.
            lock = self.cache_dir / "locks" / stable_hash([handle.engine.identity, dimension.NAME])[:32]
            with locked(lock):
                try:
                    self._compute(dimension, handle)
                except Exception as exc:
                    if not is_out_of_memory(exc):
                        raise
                    self._out_of_memory[handle.config] = self._out_of_memory_message(handle, dimension)
                    handle.engine.release()
                    free_gpu_memory()
                    raise TrustError(self._out_of_memory[handle.config]) from None
        return self._results[key]

    def _compute(self, dimension: ModuleType, handle: ModelHandle) -> None:
        key = (dimension.NAME, handle.config)
        start = time.perf_counter()
        selected = self.selected(dimension)
        outputs = handle.engine.generate(dimension.build_requests(selected))
        extra: dict[str, Any] = {}
        if hasattr(dimension, "texts_to_score"):  # dimensions rated by an external scorer
            extra["scores"] = self.toxicity_scores(dimension.texts_to_score(selected, outputs))
        self._results[key] = dimension.score(selected, outputs, self.options.variant, **extra)
        self._seconds[key] = time.perf_counter() - start

    def _out_of_memory_message(self, handle: ModelHandle, dimension: ModuleType) -> str:
        from .engine.hf import default_batch_tokens

        budget = self.options.batch_tokens or default_batch_tokens(self.device.type)
        return out_of_memory_message(handle.config, dimension.NAME, budget)

    @property
    def scorer(self) -> Any:
        if self._scorer is None:
            from .scorers import make_scorer

            self._scorer = make_scorer(self.options.toxicity_scorer)
        return self._scorer

    def toxicity_scores(self, texts: list[str]) -> dict[str, float]:
        """Scorer values for `texts`, cached by (scorer identity, text) like model answers."""
        identity = self.scorer.identity()
        keys = {text: stable_hash({"kind": "toxicity", "scorer": identity, "text": text}) for text in texts}
        found = self.cache.get_many(list(keys.values()))
        result = {t: float(found[k]) for t, k in keys.items() if isinstance(found.get(k), (int, float))}
        missing = [t for t in texts if t not in result]
        for start in range(0, len(missing), 256):  # stored chunk by chunk: an interrupted run keeps them
            chunk = missing[start : start + 256]
            values = self.scorer.score(chunk)
            self.cache.put_many([(keys[t], v) for t, v in zip(chunk, values)])
            result.update(zip(chunk, values))
        return result

    # ----------------------------------------------------------------- baselines
    def baseline_identity(self) -> dict[str, Any]:
        """What a stored baseline must share with this run to stand in for its dense model."""
        from .models.loading import accelerator_name

        return {
            "model": self.model_identity,
            "runtime": {**self._runtime_identity(), "accelerator": accelerator_name(self.device)},
            "samples": self.options.samples, "seed": self.options.seed, "variant": self.options.variant,
            "comptrust_version": __version__,
        }

    def dimension_identity(self, dimension: ModuleType) -> dict[str, Any]:
        """Probe data, every prompt with its generation settings, and the scorer, hashed."""
        requests = [
            [r.key, [[m.role, m.content] for m in r.messages], repr(r.settings)]
            for r in dimension.build_requests(self.selected(dimension))
        ]
        identity: dict[str, Any] = {
            "probe_sha256": self.probes(dimension).sha256, "requests_sha256": stable_hash(requests),
        }
        if hasattr(dimension, "texts_to_score"):
            identity["scorer"] = self.scorer.identity()
        return identity

    @property
    def baseline(self) -> BaselineStore | None:
        if self.options.baseline is not None and self._baseline is None:
            self._baseline = BaselineStore(self.options.baseline, self.baseline_identity())
        return self._baseline

    def dense_result(self, dimension: ModuleType, dense: ModelHandle) -> tuple[DimensionResult, str]:
        """The dense result (from the stored baseline when one is given) and, when this call
        wrote the baseline, the note that must fail the test so a human reviews it."""
        store = self.baseline
        if store is None:
            return self.evaluate(dimension, dense), ""
        identity = self.dimension_identity(dimension)
        if not self.options.update_baseline:
            stored = store.load(dimension.NAME, identity)
            if stored is not None:
                return stored.result, ""
            verb = "created"
        else:
            verb = "updated"
        result = self.evaluate(dimension, dense)
        store.save(dimension.NAME, BaselineEntry(identity, result), replace_all=self.options.update_baseline)
        self.events.append(f"baseline {verb}: {store.path} ({dimension.NAME})")
        return result, f"baseline {verb}: {store.path} ({dimension.NAME}); review and commit it, then rerun"

    # ------------------------------------------------------------------- gating
    def interval(
        self, dimension: ModuleType, dense: DimensionResult, compressed: DimensionResult
    ) -> Interval | None:
        """Paired bootstrap interval of the delta (None when --trust-bootstrap=0)."""
        if not self.options.bootstrap:
            return None
        selected, variant = self.selected(dimension), self.options.variant
        return paired_bootstrap(
            dense.outcomes, compressed.outcomes,
            aggregate=lambda outcomes: dimension.aggregate(selected, outcomes, variant),
            unit=getattr(dimension, "resample_unit", lambda key: key),
            replicates=self.options.bootstrap,
            seed=int(stable_hash([self.options.seed, dimension.NAME])[:12], 16),
        )

    def check(
        self, dimension: ModuleType, dense: ModelHandle, compressed: ModelHandle | None
    ) -> Verdict:
        """Evaluate dense (or read it from the baseline) and compressed on one dimension,
        gate, and record the row."""
        dense_result, note = self.dense_result(dimension, dense)
        comp_result = self.evaluate(dimension, compressed) if compressed else None
        agreement = compare_answers(dense_result, comp_result) if comp_result else None
        interval = self.interval(dimension, dense_result, comp_result) if comp_result else None
        config = compressed.config if compressed else "dense"
        verdict = gate(
            dense_result, comp_result, config, self.options.tolerance.for_dimension(dimension.NAME),
            agreement, interval, self.options.gate, self.options.refusal_shift, self.options.fail_on_refusal_shift,
        )
        if note:
            verdict = replace(verdict, status="FAIL", reason=note)
        seconds = self._seconds.get((dimension.NAME, dense.config), 0.0)
        if compressed:
            seconds += self._seconds.get((dimension.NAME, compressed.config), 0.0)
        source = f"baseline:{self.options.baseline}" if self.options.baseline and not note else "run"
        self.rows.append(ResultRow(
            verdict, dense_result, comp_result, self.probes(dimension).sha256, seconds, source,
        ))
        return verdict

    # ------------------------------------------------------------------- reports
    def run_info(self) -> RunInfo:
        identity = self._model_identity or {}
        if self._device is not None:
            runtime = self._runtime_identity()
        else:  # nothing was loaded (e.g. a run that failed early): report what was asked for
            runtime = {"device": self.options.device, "dtype": self.options.dtype}
        return RunInfo(
            model=self.entry.name, model_identity=identity,
            settings={
                "samples": self.options.samples, "seed": self.options.seed,
                "device": runtime["device"], "dtype": runtime["dtype"],
                "variant": self.options.variant,
                "tolerance": {"default": self.options.tolerance.default, **self.options.tolerance.overrides},
                "gate": self.options.gate, "refusal_shift_limit": self.options.refusal_shift,
                "baseline": str(self.options.baseline) if self.options.baseline else None,
            },
            configs=[s.canonical for s in self.options.specs],
            extra={
                "engine": self.engine_stats(), "events": list(self.events),
                "scorers": {"toxicity": self._scorer.identity()} if self._scorer is not None else {},
            },
        )

    def engine_stats(self) -> dict[str, Any]:
        return {
            handle.config: {
                "cache_hits": handle.engine.stats.hits, "computed": handle.engine.stats.misses,
                "model_loaded": handle.engine.backend_loaded or handle.engine.stats.misses > 0,
                "seconds": round(handle.engine.stats.seconds, 3),
            }
            for handle in self._handles.values()
        }

    def report(self) -> dict[str, Any]:
        return build_report(self.run_info(), self.rows)

    def flips(self) -> list[dict[str, Any]]:
        return flipped_items(self.rows)
