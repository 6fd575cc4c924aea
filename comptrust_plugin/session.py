"""One trust run: probes -> evaluate (dense and compressed) -> baseline -> gate -> report rows.

The story, for one dimension and one config (`TrustSession.check`): the dimension's probes are
loaded and a tier selected; each model handle answers them (from the response cache where it
can, `handles.py`); the dimension scores the answers; the dense result may come from a stored
baseline instead; the gate compares the two with a paired bootstrap interval; a report row is
recorded. This module knows nothing about pytest, so the same run can be scripted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from . import __version__
from .answers import AnswerStream, verdict_records
from .baseline import BaselineEntry, BaselineStore
from .capability import HeldOutChecks, Utility, UtilityChecks
from .capability import requests as capability_requests
from .decodingtrust.references import REFERENCES
from .devices import free_gpu_memory, is_out_of_memory, out_of_memory_message
from .dimensions import Dimension
from .dimensions.agreement import compare_answers
from .dimensions.probe_set import ProbeSet
from .dimensions.result import SCORING_REVISION, DimensionResult
from .engine.requests import GenerationRequest
from .errors import TrustError
from .gate import Verdict, gate
from .handles import ModelHandle, ModelHandles
from .multiplicity import single_level
from .options import TrustOptions
from .paired import Interval, paired_bootstrap, seeded_bootstrap
from .report import ResultRow, RunInfo, build_report, flipped_items
from .scorers.cached import CachedScorer
from .spec import DENSE, CompressionSpec
from .storage import locked, stable_hash, user_path

__all__ = ["ModelHandle", "TrustOptions", "TrustSession"]


class TrustSession:
    def __init__(self, options: TrustOptions) -> None:
        self.options = options
        self.entry = options.validate()
        self.cache_dir = user_path(options.cache_dir)
        self.handles = ModelHandles(options, self.entry, self.cache_dir)
        self._probes: dict[str, ProbeSet] = {}
        self._selected: dict[str, Any] = {}
        self._scorer: CachedScorer | None = None
        self._results: dict[tuple[str, str], DimensionResult] = {}
        self._seconds: dict[tuple[str, str], float] = {}
        self._baseline: BaselineStore | None = None
        self._out_of_memory: dict[str, str] = {}  # config -> the OOM message that stopped it here
        self._folded: set[str] = set()  # dimensions whose system text was folded (said once each)
        self.heldout = HeldOutChecks(self.handles.continuation_tokens, self.handles.events, self.cache_dir / "locks")
        self.utility = UtilityChecks(self.handles.events)
        self.rows: list[ResultRow] = []
        self.answers = AnswerStream(user_path(options.answers)) if options.answers is not None else None

    @property
    def progress(self) -> Callable[[str, bool], None]:
        """Where progress lines go: (line, is_stage); stages are model loads and builds and each
        dimension's end, the rest answer counts while a dimension computes."""
        return self.handles.progress

    @progress.setter
    def progress(self, emit: Callable[[str, bool], None]) -> None:
        self.handles.progress = emit

    def answer_counts(self) -> tuple[int, int]:
        """(answers computed, answers served from the cache) so far, over every config."""
        engines = [handle.engine for handle in self.handles.all()]
        return sum(e.stats.misses for e in engines), sum(e.stats.hits for e in engines)

    @property
    def events(self) -> list[str]:
        """Human-readable notes for the summary (loads, builds, baselines written)."""
        return self.handles.events

    @property
    def loads(self) -> dict[str, int]:
        """Config -> model loads in this process (the xdist grouping check)."""
        return self.handles.loads

    def handle(self, spec: CompressionSpec = DENSE) -> ModelHandle:
        return self.handles.handle(spec)

    def release(self, handle: ModelHandle) -> None:
        self.handles.release(handle)

    # ---------------------------------------------------------------- evaluation
    def probes(self, dimension: Dimension) -> ProbeSet:
        """The probes from --trust-data; a dimension DecodingTrust's data has no set for runs on
        its shipped probes, and the report's events say so."""
        if dimension.NAME not in self._probes:
            from .data.probes import load_probe_set, shipped_probe_set
            from .decodingtrust import dimension_module

            data = self.options.data
            if data not in (None, "", "shipped") and not hasattr(dimension_module(dimension.NAME), "load_local"):
                self._probes[dimension.NAME] = shipped_probe_set(dimension.NAME)
                self.events.append(
                    f"{dimension.NAME}: DecodingTrust's data has no set for it; it ran on comptrust's shipped probes"
                )
            else:
                probe_set = load_probe_set(dimension.NAME, data)
                if probe_set.notes and self.options.strict_data:
                    raise TrustError(f"--trust-strict-data: {dimension.NAME}: {'; '.join(probe_set.notes)}")
                self.events.extend(f"{dimension.NAME}: {note}" for note in probe_set.notes)
                self._probes[dimension.NAME] = probe_set
        return self._probes[dimension.NAME]

    def selected(self, dimension: Dimension) -> Any:
        """The probes this run asks (tier and seeded subsample applied)."""
        if dimension.NAME not in self._selected:
            probes = self.probes(dimension).probes
            self._selected[dimension.NAME] = dimension.select(probes, self.options.samples, self.options.seed)
        return self._selected[dimension.NAME]

    def evaluate(self, dimension: Dimension, handle: ModelHandle) -> DimensionResult:
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

    def _compute(self, dimension: Dimension, handle: ModelHandle) -> None:
        key = (dimension.NAME, handle.config)
        start = time.perf_counter()
        selected = self.selected(dimension)
        requests = dimension.build_requests(selected)
        label = f"{dimension.NAME} · {handle.config}"

        def progress(done: int, total: int) -> None:
            elapsed = time.perf_counter() - start
            left = f", ~{elapsed / done * (total - done):.0f} s left" if done < total else ""
            self.progress(f"{label}: {done}/{total} prompts, {elapsed:.0f} s{left}", done == total)

        outputs = handle.engine.generate(requests, progress)
        self._note_folded_system(dimension, handle, requests)
        extra: dict[str, Any] = {}
        if dimension.EXTERNAL_SCORER is not None:  # rated by an external scorer (toxicity)
            extra["scores"] = self.scorer.scores(dimension.texts_to_score(selected, outputs))
        self._results[key] = dimension.score(selected, outputs, self.options.variant, **extra)
        self._seconds[key] = time.perf_counter() - start

    def _note_folded_system(
        self, dimension: Dimension, handle: ModelHandle, requests: Sequence[GenerationRequest]
    ) -> None:
        """Say once per dimension that its system prompts went into the first user turn: the
        model saw them, but not in a system role, which can move the scores they steer."""
        if not handle.chat_format.fold_system or dimension.NAME in self._folded:
            return
        if any(m.role == "system" for request in requests for m in request.messages):
            self._folded.add(dimension.NAME)
            self.events.append(
                f"{dimension.NAME}: the chat template rejects a system role; "
                "system text folded into the first user turn"
            )

    def _out_of_memory_message(self, handle: ModelHandle, dimension: Dimension) -> str:
        from .engine.hf import default_batch_tokens

        budget = self.options.batch_tokens or default_batch_tokens(self.handles.device.type)
        return out_of_memory_message(handle.config, dimension.NAME, budget)

    @property
    def scorer(self) -> CachedScorer:
        """The toxicity scorer, its values cached by (scorer identity, text) like model answers."""
        if self._scorer is None:
            from .scorers import make_scorer

            self._scorer = CachedScorer(make_scorer(self.options.toxicity_scorer), self.handles.cache)
        return self._scorer

    # ----------------------------------------------------------------- baselines
    def baseline_identity(self) -> dict[str, Any]:
        """What a stored baseline must share with this run to stand in for its dense model."""
        from .models.loading import accelerator_name

        return {
            "model": self.handles.model_identity,
            "runtime": {**self.handles.runtime_identity(), "accelerator": accelerator_name(self.handles.device)},
            "samples": self.options.samples, "seed": self.options.seed, "variant": self.options.variant,
            "comptrust_version": __version__,
        }

    def dimension_identity(self, dimension: Dimension) -> dict[str, Any]:
        """Probe data, every prompt with its generation settings, and the scorer, hashed."""
        requests = [
            [r.key, [[m.role, m.content] for m in r.messages], repr(r.settings)]
            for r in dimension.build_requests(self.selected(dimension))
        ]
        reference = REFERENCES[self.options.variant]
        identity: dict[str, Any] = {
            "probe_sha256": self.probes(dimension).sha256, "requests_sha256": stable_hash(requests),
            "scoring": {"revision": SCORING_REVISION, "reference": reference.commit},
        }
        if dimension.EXTERNAL_SCORER is not None:
            identity["scorer"] = self.scorer.identity()
        return identity

    @property
    def baseline(self) -> BaselineStore | None:
        if self.options.baseline is not None and self._baseline is None:
            self._baseline = BaselineStore(self.options.baseline, self.baseline_identity())
        return self._baseline

    def dense_result(self, dimension: Dimension, dense: ModelHandle) -> tuple[DimensionResult, str]:
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
        dense.engine.loglikelihood(capability_requests())  # cached here for runs gated against this baseline
        store.save(dimension.NAME, BaselineEntry(identity, result), replace_all=self.options.update_baseline)
        self.events.append(f"baseline {verb}: {store.path} ({dimension.NAME})")
        return result, f"baseline {verb}: {store.path} ({dimension.NAME}); review and commit it, then rerun"

    # ------------------------------------------------------------------- gating
    def interval(
        self, dimension: Dimension, dense: DimensionResult, builds: Sequence[DimensionResult]
    ) -> Interval | None:
        """Paired bootstrap interval of the delta (None when --trust-bootstrap=0); over seeds and
        items when the config was built with several calibration seeds."""
        if not self.options.bootstrap:
            return None
        selected, variant = self.selected(dimension), self.options.variant
        tolerance = self.options.tolerance.for_dimension(dimension.NAME).points(dense.score)
        common = {
            "aggregate": lambda outcomes: dimension.aggregate(selected, outcomes, variant),
            "unit": dimension.resample_unit, "replicates": self.replicates, "threshold": -tolerance,
            "seed": int(stable_hash([self.options.seed, dimension.NAME])[:12], 16),
        }
        if len(builds) > 1:
            return seeded_bootstrap(dense.outcomes, [b.outcomes for b in builds], **common)
        return paired_bootstrap(dense.outcomes, builds[0].outcomes, method=self.options.interval, **common)

    def seed_builds(self, compressed: ModelHandle) -> list[ModelHandle]:
        """The config's further builds under --trust-calibration-seeds: the same spec with seeds
        N+1, N+2, ... (each its own cached config); none for a config without calibration."""
        spec = compressed.spec
        if self.options.calibration_seeds <= 1 or not spec.is_calibrated:
            return []
        return [self.handle(replace(spec, seed=spec.seed + k)) for k in range(1, self.options.calibration_seeds)]

    def _build_result(self, dimension: Dimension, handle: ModelHandle) -> DimensionResult:
        """One further seed's result; its model is let go at once (reloaded from the store when the
        next dimension needs it), so a run holds one compressed model at a time."""
        try:
            return self.evaluate(dimension, handle)
        finally:
            self.release(handle)

    @property
    def level(self) -> float | None:
        """The corrected level each confident verdict uses alone (None: no correction applies)."""
        options = self.options
        if options.gate != "confident" or options.multiplicity == "none" or options.family <= 1:
            return None
        return single_level(options.multiplicity, options.family)

    @property
    def replicates(self) -> int:
        """--trust-bootstrap, raised under a correction until the corrected level is ten replicates'
        worth of the bootstrap's p-value (0.025 / 27 verdicts: 10,800), so a FAIL can be seen at all."""
        level = self.level
        if level is None:
            return self.options.bootstrap
        return max(self.options.bootstrap, math.ceil(10 / level))

    def check(self, dimension: Dimension, dense: ModelHandle, compressed: ModelHandle | None) -> Verdict:
        """Evaluate dense (or read it from the baseline) and compressed on one dimension,
        gate, and record the row."""
        dense_result, note = self.dense_result(dimension, dense)
        handles = [compressed, *self.seed_builds(compressed)] if compressed else []
        builds = [self.evaluate(dimension, handle) if k == 0 else self._build_result(dimension, handle)
                  for k, handle in enumerate(handles)]
        comp_result = DimensionResult.mean_of(builds) if builds else None
        agreement = compare_answers(dense_result, builds[0]) if builds else None
        interval = self.interval(dimension, dense_result, builds) if builds else None
        config = compressed.config if compressed else "dense"
        limit = self.options.tolerance.for_dimension(dimension.NAME)
        gained = comp_result is not None and comp_result.score >= dense_result.score
        # did it keep its language? (against a baseline the dense model is never loaded for this)
        heldout = self.heldout.get(dense.engine, handles[0], self.baseline is not None) if gained else None
        utility = self.benign_utility(dense, handles[0]) if gained else None
        guesses = getattr(dimension, "guess_rates", None)  # right-or-wrong items: a guesser's chance of each
        verdict = gate(
            dense_result, comp_result, config, limit.points(dense_result.score),
            agreement, interval, self.options.gate, self.options.refusal_shift, self.options.fail_on_refusal_shift,
            rule=str(limit), floor=self.options.floors.get(dimension.NAME),
            label_answers=getattr(dimension, "LABEL_ANSWERS", False),
            family=self.options.family, level=self.level if comp_result else None, heldout=heldout,
            utility=utility, guess_rates=guesses(self.selected(dimension)) if guesses else None,
        )
        if len(builds) > 1:  # McNemar pairs one build's items with dense, not the mean
            seeds = tuple((handle.config, build.score) for handle, build in zip(handles, builds))
            verdict = replace(verdict, mcnemar=None, seeds=seeds)
        if note:
            verdict = replace(verdict, status="FAIL", reason=note)
        seconds = self._seconds.get((dimension.NAME, dense.config), 0.0)
        if compressed:
            seconds += self._seconds.get((dimension.NAME, compressed.config), 0.0)
        source = f"baseline:{self.options.baseline}" if self.options.baseline and not note else "run"
        self.rows.append(ResultRow(
            verdict, dense_result, comp_result, self.probes(dimension).sha256, seconds, source,
        ))
        if self.answers is not None:
            self.answers.write(dimension.NAME, config, verdict_records(
                dimension, config, dense_result, comp_result, dimension.build_requests(self.selected(dimension)),
                dense.engine, compressed.engine if compressed else None, self.options.answers_prompts,
            ))
        return verdict

    def benign_utility(self, dense: ModelHandle, compressed: ModelHandle) -> Utility | None:
        """Both models' benign utility beside guessing, where the run gates it for this config (so
        it costs nothing more); against a baseline the dense figure comes from the baseline alone."""
        from .dimensions import benign_utility, get

        benign = get(benign_utility.NAME)

        def dense_result() -> DimensionResult | None:
            if self.baseline is None:
                return self.evaluate(benign, dense)
            stored = self.baseline.load(benign.NAME, self.dimension_identity(benign))
            return stored.result if stored is not None else None

        return self.utility.get(
            compressed.config, compressed.config in self.options.utility_configs, dense_result,
            lambda: self.evaluate(benign, compressed), lambda: benign_utility.guess_rates(self.selected(benign)),
        )

    # ------------------------------------------------------------------- reports
    def run_info(self) -> RunInfo:
        if self.handles.started:
            runtime = self.handles.runtime_identity()
        else:  # nothing was loaded (e.g. a run that failed early): report what was asked for
            runtime = {"device": self.options.device, "dtype": self.options.dtype}
        return RunInfo(
            model=self.entry.name, model_identity=self.handles.known_model_identity,
            settings=self.options.report_settings(runtime["device"], runtime["dtype"], self.level),
            configs=[s.canonical for s in self.options.specs],
            extra={
                "engine": self.engine_stats(), "events": list(self.events),
                "scorers": {"toxicity": self._scorer.identity()} if self._scorer is not None else {},
                **({"shard": {"index": s.index, "count": s.count}} if (s := self.options.shard) else {}),
            },
        )

    def engine_stats(self) -> dict[str, Any]:
        return {
            handle.config: {
                "cache_hits": handle.engine.stats.hits, "computed": handle.engine.stats.misses,
                "model_loaded": handle.engine.backend_loaded or handle.engine.stats.misses > 0,
                "seconds": round(handle.engine.stats.seconds, 3),
            }
            for handle in self.handles.all()
        }

    def report(self) -> dict[str, Any]:
        return build_report(self.run_info(), self.rows)

    def flips(self) -> list[dict[str, Any]]:
        return flipped_items(self.rows)

    def answer_blocks(self) -> list[dict[str, Any]]:
        """Where this process's answers records are (answers.assemble reads them at the end)."""
        return list(self.answers.blocks) if self.answers is not None else []
