"""Spec -> weights -> engine: one build path, for every backend, from a compression spec to a cached engine.

`ModelHandles` owns what a run needs to turn a `CompressionSpec` into answers: the device and
dtype, the model's identity, the response cache, and the weights. Weights come from one place
(`_weights`): the model itself (dense, or a `hub:` checkpoint), compressed in memory (cheap
methods), or a stored artifact built once under a lock and set aside and rebuilt once when its
files turn out corrupt. The HF backend takes loaded weights; vLLM takes a folder. Models load
lazily: a handle whose every answer is cached never touches weights. The effective chat format
(the tokenizer's template probed once: does it take a system role?) is decided with the identity,
since it is part of it; that loads the tokenizer, which rendering the prompts needs anyway.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .devices import free_gpu_memory
from .engine.cache import ResponseCache
from .engine.cached import CachedEngine
from .engine.requests import HF_NUMERICS
from .errors import CorruptWeights, TrustError
from .models.chat import ChatFormat, Message, no_template_message, probe_template, template_failure
from .models.identity import model_identity
from .models.registry import ModelEntry, quantization_summary, resolve_model
from .options import TrustOptions
from .spec import DEFAULT_CAL_SAMPLES, DENSE, CompressionSpec

if TYPE_CHECKING:
    import torch

    from .engine.hf import HFBackend
    from .engine.vllm import VLLMBackend
    from .models.loading import LoadedModel

# rebuilt from dense in seconds: not stored on disk (except for vLLM)
CHEAP_METHODS = ("mag", "rtn", "gguf", "fp8", "nf4", "fp4")


@dataclass
class ModelHandle:
    config: str  # "dense" or the canonical compression spec
    spec: CompressionSpec
    engine: CachedEngine
    chat_format: ChatFormat  # the effective format its prompts are rendered with (fold_system included)


class ModelHandles:
    """The handles of one run, one per config, sharing one response cache."""

    def __init__(self, options: TrustOptions, entry: ModelEntry, cache_dir: Path) -> None:
        self.options = options
        self.entry = entry
        self.cache_dir = cache_dir
        self._device: torch.device | None = None
        self._dtype: torch.dtype | None = None
        self._model_identity: dict[str, Any] | None = None
        self._cache: ResponseCache | None = None
        self._tokenizers: dict[str, Any] = {}
        self._chat_formats: dict[str, ChatFormat] = {}  # entry name -> effective chat format
        self._handles: dict[str, ModelHandle] = {}
        self.events: list[str] = []  # human-readable notes for the summary (loads, builds)
        self.loads: dict[str, int] = {}  # config -> model loads in this process (xdist grouping check)
        # (line, is_stage) for whoever shows progress (the plugin: the terminal); silent by default
        self.progress: Callable[[str, bool], None] = lambda line, stage: None

    # ------------------------------------------------------------------ identity
    @property
    def device(self) -> torch.device:
        if self._device is None:
            from .models.loading import resolve_device

            self._device = resolve_device(self.options.device)
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        if self._dtype is None:
            from .models.loading import resolve_dtype

            self._dtype = resolve_dtype(self.options.dtype, self.device)
        return self._dtype

    @property
    def started(self) -> bool:
        """Whether the device was resolved (torch imported): a run that failed early has not."""
        return self._device is not None

    @property
    def model_identity(self) -> dict[str, Any]:
        if self._model_identity is None:
            self._model_identity = model_identity(self._effective(self.entry), self.cache_dir)
        return self._model_identity

    @property
    def known_model_identity(self) -> dict[str, Any]:
        """The model identity if it was computed, else {} (never hashes weights for a report)."""
        return self._model_identity or {}

    def runtime_identity(self) -> dict[str, Any]:
        from .models.loading import dtype_name

        return {"device": self.device.type, "dtype": dtype_name(self.dtype)}

    def artifact_identity(self, spec: CompressionSpec) -> dict[str, Any]:
        """What names a compressed model: model, resolved spec, method versions, calibration, runtime."""
        from .compress.apply import compression_identity
        from .compress.export_schemes import ct_format

        spec = spec.for_device(self.device.type)
        identity = {
            "model": self.model_identity, "spec": spec.identity(),
            **compression_identity(spec), **self.runtime_identity(),
        }
        if ct_format(spec) is not None:  # stored packed only where compressed-tensors is installed
            identity["stored"] = "compressed-tensors" if importlib.util.find_spec("compressed_tensors") else "dense"
        return identity

    # ------------------------------------------------------------------- handles
    @property
    def cache(self) -> ResponseCache:
        if self._cache is None:
            self._cache = ResponseCache(self.cache_dir / "responses.sqlite3")
            if self._cache.shared:
                self.events.append(f"response cache shared by hosts ({self._cache.shared}): rollback journal, not WAL")
        return self._cache

    def handle(self, spec: CompressionSpec = DENSE) -> ModelHandle:
        key = spec.canonical
        if key not in self._handles:
            self._handles[key] = self._make_handle(spec)
        return self._handles[key]

    def all(self) -> Sequence[ModelHandle]:
        return tuple(self._handles.values())

    def release(self, handle: ModelHandle) -> None:
        """Drop a config's model once its tests are done, and give its GPU memory back."""
        if handle.engine.backend_loaded:
            handle.engine.release()
            free_gpu_memory()

    def _make_handle(self, spec: CompressionSpec) -> ModelHandle:
        entry = self.entry
        if spec.method == "hub":
            assert spec.hub_repo is not None
            target = spec.hub_repo + (f"@{spec.hub_revision}" if spec.hub_revision else "")
            # A pre-compressed checkpoint of the same model talks the base model's chat format.
            entry = replace(resolve_model(target), chat_format=self.entry.chat_format, is_chat=self.entry.is_chat)
            # Its identity first: that resolves the revision (one line when the hub is unreachable)
            # before the chat format loads its tokenizer.
            checkpoint = model_identity(entry, self.cache_dir)
            weights: dict[str, Any] = {"checkpoint": {**checkpoint, "chat_format": self.chat_format(entry).name}}
            summary = quantization_summary(entry)
            if summary:
                self.events.append(f"{spec.canonical}: {summary}")
            from .models.quantized import LOADER_REVISION

            weights["loader"] = LOADER_REVISION  # how its quantized weights are read
        elif spec.is_dense:
            weights = {"model": self.model_identity}
        else:
            weights = self.artifact_identity(spec)
        chat = self.chat_format(entry)
        identity = {"weights": weights, "chat_format": chat.name, **self.runtime_identity()}
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
                renderer=lambda: self._renderer(entry), backend=lambda: self._backend(spec, entry),
            ),
            chat_format=chat,
        )

    def _tokenizer(self, entry: ModelEntry) -> Any:
        if entry.name not in self._tokenizers:
            from .models.loading import load_tokenizer

            self._tokenizers[entry.name] = load_tokenizer(entry, self.cache_dir, self.options.trust_remote_code)
        return self._tokenizers[entry.name]

    def continuation_tokens(self, texts: Sequence[str]) -> int:
        """How many tokens `texts` take as continuations (no special tokens), by the model's tokenizer."""
        tokenizer = self._tokenizer(self.entry)
        return sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts)

    def chat_format(self, entry: ModelEntry) -> ChatFormat:
        """The format `entry`'s prompts are rendered with: its chosen layout, and for a template
        whether it rejects a system role (probed once per tokenizer, see `chat.probe_template`)."""
        if entry.name not in self._chat_formats:
            chat = entry.chat_format
            if chat.kind == "template":
                tokenizer = self._tokenizer(entry)
                if not getattr(tokenizer, "chat_template", None):
                    raise TrustError(no_template_message(entry.name, self.options.chat_format))
                chat = probe_template(self._apply_template(tokenizer), entry.name)
            self._chat_formats[entry.name] = chat
        return self._chat_formats[entry.name]

    def _effective(self, entry: ModelEntry) -> ModelEntry:
        """`entry` with its effective chat format (what its identity names)."""
        return replace(entry, chat_format=self.chat_format(entry))

    @staticmethod
    def _apply_template(tokenizer: Any) -> Any:
        def apply(messages: list[dict[str, str]]) -> str:
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

        return apply

    def _renderer(self, entry: ModelEntry) -> Any:
        chat = self.chat_format(entry)
        if chat.kind != "template":
            return chat.render
        apply = self._apply_template(self._tokenizer(entry))

        def checked(messages: list[dict[str, str]]) -> str:
            try:
                return apply(messages)
            except Exception as exc:  # a template that passed the probe yet refuses this conversation
                raise TrustError(template_failure(entry.name, exc)) from None

        def render(messages: Sequence[Message]) -> str:
            return chat.render(messages, checked)

        return render

    # ------------------------------------------------------------------- weights
    def _backend(self, asked: CompressionSpec, entry: ModelEntry) -> HFBackend | VLLMBackend:
        # One compressed model in memory at a time: configs run one after another.
        released = False
        for other in self._handles.values():
            if other.config not in ("dense", asked.canonical) and other.engine.backend_loaded:
                other.engine.release()
                released = True
        if released:
            free_gpu_memory()
        self.loads[asked.canonical] = self.loads.get(asked.canonical, 0) + 1
        spec = asked.for_device(self.device.type)
        building = not (spec.is_dense or spec.method == "hub")
        self.progress(f"{asked.canonical}: loading the model{' and compressing it' if building else ''}", True)
        if spec.is_calibrated and asked.n_samples is None and spec.cal_samples != DEFAULT_CAL_SAMPLES:
            self.events.append(
                f"{asked.canonical}: calibrated on {spec.cal_samples} x {spec.seqlen} tokens, the "
                f"{self.device.type} default (the references use {DEFAULT_CAL_SAMPLES}: "
                f"--compress={asked.canonical}-ns{DEFAULT_CAL_SAMPLES})"
            )
        if self.options.backend == "vllm":
            return self._vllm_backend(spec, entry)
        from .engine.hf import HFBackend

        return HFBackend(self._weights(spec, entry), max_batch_tokens=self.options.batch_tokens)

    def _vllm_backend(self, spec: CompressionSpec, entry: ModelEntry) -> VLLMBackend:
        """vLLM reads weights from a folder: the model's own, a hub checkpoint's, or a stored
        artifact (every compression method is stored under vLLM, the cheap ones too)."""
        from .engine.vllm import VLLMBackend
        from .models.loading import dtype_name, pretrained_source

        source, kwargs = pretrained_source(entry, self.cache_dir, self.options.trust_remote_code)
        weights, revision = source, kwargs.get("revision")
        if not (spec.is_dense or spec.method == "hub"):
            path, built = self._stored(spec, entry)
            if built is not None:  # vLLM loads the folder itself: free what the build held
                del built
                free_gpu_memory()
            weights, revision = str(path), None
        self.events.append(f"vllm: serving {spec.canonical} from {weights}")
        return VLLMBackend.create(
            weights, revision, tokenizer=source, tokenizer_revision=kwargs.get("revision"),
            dtype=dtype_name(self.dtype), trust_remote_code=self.options.trust_remote_code,
            tokenizer_object=self._tokenizer(entry), add_special_tokens=entry.chat_format.adds_special_tokens,
        )

    def _load(
        self, entry: ModelEntry, weights_dir: Path | None = None, device: torch.device | None = None
    ) -> LoadedModel:
        from .models.loading import load_model

        loaded = load_model(
            entry, self.cache_dir, device or self.device, self.dtype, trust_remote_code=self.options.trust_remote_code,
            weights_dir=weights_dir, allow_pickle=self.options.allow_pickle,
        )
        if loaded.note:
            self.events.append(loaded.note)
        return loaded

    def _weights(self, spec: CompressionSpec, entry: ModelEntry) -> LoadedModel:
        """Loaded weights of a (device-resolved) spec for the HF backend, with the spec's run-time
        activation quantization attached."""
        from .compress.apply import quantize_activations

        loaded = self._compressed_weights(spec, entry)
        if quantize_activations(loaded.model, spec):
            self.events.append(f"{spec.canonical}: {spec.activations} activations per token at every "
                               "decoder-block Linear")
        return loaded

    def _compressed_weights(self, spec: CompressionSpec, entry: ModelEntry) -> LoadedModel:
        from .compress.apply import compress_model

        if spec.is_dense or spec.method == "hub":
            loaded = self._load(entry)
            self.events.append(f"loaded {spec.canonical} model in {loaded.load_seconds:.1f}s")
            return loaded
        if spec.method in CHEAP_METHODS:
            loaded = self._load(entry)
            stats = compress_model(loaded.model, spec, loaded.tokenizer)
            self.events.append(f"compressed {spec.canonical} in {stats.seconds:.1f}s")
            return loaded
        path, built = self._stored(spec, entry)
        if built is not None:
            return built
        try:
            return self._load(entry, weights_dir=path)
        except CorruptWeights as exc:  # same size, bad bytes: set it aside, build it again (once)
            from .compress.store import ArtifactStore

            ArtifactStore(self.cache_dir).discard(path, str(exc))
        path, built = self._stored(spec, entry, verb="rebuilt")
        return built if built is not None else self._load(entry, weights_dir=path)

    def _stored(
        self, spec: CompressionSpec, entry: ModelEntry, verb: str = "stored"
    ) -> tuple[Path, LoadedModel | None]:
        """The folder of a compressed model, built once under the store's lock, and the model
        this call built (None when another process or an earlier run had built it)."""
        import torch

        from .compress.apply import compress_model
        from .compress.export import save_weights
        from .compress.store import ArtifactStore, save_grids

        built: list[LoadedModel] = []

        # On an accelerator a calibrated method keeps the weights in host memory and compresses one
        # block at a time there (peak accelerator memory: one block); the run then loads the stored
        # folder onto its device(s) like any checkpoint.
        on_host = self.device.type != "cpu" and spec.is_calibrated

        def build(tmp: Path) -> None:
            loaded = self._load(entry, device=torch.device("cpu") if on_host else None)
            stats = compress_model(loaded.model, spec, loaded.tokenizer, accelerator=self.device if on_host else None)
            form = save_weights(loaded.model, spec, stats.grids, tmp)
            save_grids(tmp, stats.grids)
            where = f", weights on the host, one block at a time on {self.device}" if on_host else ""
            if not on_host:
                built.append(loaded)
            self.events.append(f"compressed {spec.canonical} in {stats.seconds:.1f}s ({verb}, {form}{where})")

        path, _ = ArtifactStore(self.cache_dir).get_or_build(self.artifact_identity(spec), build)
        return path, built[0] if built else None

    # -------------------------------------------------------------------- export
    def export(self, asked: CompressionSpec, target: Path) -> Path:
        """Write a compressed config to `target` as a checkpoint others load (compress/export.py):
        from its stored artifact, or compressed again (cheap methods)."""
        from .compress.apply import compress_model, compression_identity
        from .compress.export import not_exportable, write_checkpoint
        from .compress.nf4 import KINDS as NF4_KINDS
        from .compress.store import load_grids

        if asked.is_dense or asked.method == "hub":
            raise TrustError(f"--compress={asked.canonical}: only a compression comptrust made can be exported")
        refusal = not_exportable(asked)
        if refusal:
            raise TrustError(refusal)
        spec = asked.for_device(self.device.type)
        self.progress(f"{asked.canonical}: writing the checkpoint to {target}", True)
        if spec.method in NF4_KINDS:  # written from the dense weights, which bitsandbytes quantizes
            loaded, grids = self._load(self.entry), {}
        elif spec.method in CHEAP_METHODS:
            loaded = self._load(self.entry)
            grids = compress_model(loaded.model, spec, loaded.tokenizer).grids
        else:
            path, built = self._stored(spec, self.entry)
            loaded = built if built is not None else self._load(self.entry, weights_dir=path)
            grids = load_grids(path)
        provenance = {
            "model_name": self.entry.name, "model": self.model_identity,
            **compression_identity(spec), **self.runtime_identity(),
        }
        written = write_checkpoint(loaded.model, loaded.tokenizer, spec, grids, target, provenance)
        self.events.append(f"exported {asked.canonical} to {written}")
        return written
