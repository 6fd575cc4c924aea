"""Parse `--compress` strings ("wanda-50", "gptq-4-g128-act", "sparsegpt-2:4") into CompressionSpec.

Grammar (see shared/design/COMPRESSION.md):

    METHOD-LEVEL[-KNOB...]   or   dense   or   hub:REPO[@REVISION] / hub:/local/dir

The canonical spelling (`CompressionSpec.canonical`) leaves out knobs at their default value;
`CompressionSpec.identity()` always lists every resolved knob, so a cache key never depends
on which spelling the user typed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from .errors import one_line

PRUNING_METHODS = ("mag", "wanda", "sparsegpt")
QUANT_METHODS = ("rtn", "gptq", "awq")
CALIBRATED_METHODS = ("wanda", "sparsegpt", "gptq", "awq", "int8")
GGUF_TYPES = ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0")  # llama.cpp block quants (compress/gguf.py)
# Today's deployment schemes: compressed-tensors' FP8 and INT8 W8A8 (compress/w8a8.py, SmoothQuant in
# compress/smoothquant.py), bitsandbytes' 4-bit NF4 / FP4 (compress/nf4.py). Their level is implied.
SCHEME_METHODS = ("fp8", "int8", "nf4", "fp4")
METHODS = ("dense", *PRUNING_METHODS, *QUANT_METHODS, "gguf", *SCHEME_METHODS)

METHOD_ALIASES = {
    "magnitude": "mag",
    "magnitude_pruning": "mag",
    "sparse-gpt": "sparsegpt",
    "sparse_gpt": "sparsegpt",
    "round-to-nearest": "rtn",
    "none": "dense",
    "fp16": "dense",
    "base": "dense",
}

DEFAULT_GROUP_SIZE = 128
DEFAULT_CALIBRATION = "comptrust-mix"
DEFAULT_CAL_SAMPLES = 128  # the references' count; what a spec without `nsN` means on a GPU
CPU_CAL_SAMPLES = 16  # ... and on a CPU, where 128 x 512 tokens take minutes per method
DEFAULT_CAL_SEQLEN = 512
DEFAULT_SEED = 0
DEFAULT_DAMP = 0.01
DEFAULT_SINK = 128  # compress/hessian.py's SINK_WEIGHT (a test keeps the two equal)
DEFAULT_ALPHA = 0.5  # SmoothQuant's migration strength (its paper's and llm-compressor's default)
DEFAULT_BLOCK = 64  # bitsandbytes' 4-bit block size (compress/nf4.py keeps the same default)
BLOCK_SIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)  # the block sizes bitsandbytes' quantize_4bit takes

EXAMPLES = ("dense, mag-50, wanda-2:4, sparsegpt-50, rtn-4, gptq-4-g128-act, awq-4, gguf-q4_0, fp8, fp8-dyn, "
            "int8-w8a8, nf4, hub:org/model@rev")


class SpecError(ValueError):
    """A compression spec the grammar rejects; the message is one actionable line."""


@dataclass(frozen=True)
class CompressionSpec:
    method: str
    sparsity: int | None = None  # percent, unstructured pruning
    n_m: tuple[int, int] | None = None  # N:M semi-structured pruning
    bits: int | None = None
    group_size: int = DEFAULT_GROUP_SIZE  # -1 = one group per output row
    act_order: bool = False
    seed: int = DEFAULT_SEED
    calibration: str = DEFAULT_CALIBRATION
    n_samples: int | None = None  # None = the device's default (see `for_device`)
    seqlen: int = DEFAULT_CAL_SEQLEN
    damp: float = DEFAULT_DAMP
    sink: int = DEFAULT_SINK  # weight of each window's first token in the Hessian (gptq, sparsegpt); 1 = off
    gguf_type: str | None = None  # the llama.cpp type of a `gguf-TYPE` spec
    # Fields below enter the identity only where set, so keys of the specs before them stay valid.
    per_tensor: bool = False  # fp8: one weight scale per tensor (default: one per output channel)
    activations: str | None = None  # dynamic per-token activation quantization: "fp8" or "int8"
    alpha: float | None = None  # int8-w8a8: SmoothQuant's migration strength
    block: int | None = None  # nf4/fp4: elements per absmax block
    double_quant: bool = False  # nf4/fp4: the absmax values quantized again (bitsandbytes' compress_statistics)
    hub_repo: str | None = None
    hub_revision: str | None = None

    @property
    def is_dense(self) -> bool:
        return self.method == "dense"

    @property
    def is_pruning(self) -> bool:
        return self.method in PRUNING_METHODS

    @property
    def is_quantization(self) -> bool:
        return self.method in QUANT_METHODS

    @property
    def is_calibrated(self) -> bool:
        return self.method in CALIBRATED_METHODS

    @property
    def is_scheme(self) -> bool:
        """fp8 / int8-w8a8 / nf4 / fp4: a deployment scheme whose numerics a library defines."""
        return self.method in SCHEME_METHODS

    @property
    def canonical(self) -> str:
        if self.method == "dense":
            return "dense"
        if self.method == "hub":
            rev = f"@{self.hub_revision}" if self.hub_revision else ""
            return f"hub:{self.hub_repo}{rev}"
        if self.method == "gguf":
            return f"gguf-{self.gguf_type}"
        if self.method == "fp8":
            return "-".join(["fp8", *(["dyn"] if self.activations else []), *(["tensor"] if self.per_tensor else [])])
        if self.method in ("nf4", "fp4"):
            return "-".join([self.method, *([f"b{self.block}"] if self.block != DEFAULT_BLOCK else []),
                             *(["dq"] if self.double_quant else [])])
        if self.method == "int8":
            parts = ["int8", "w8a8", *([f"alpha{self.alpha:g}"] if self.alpha != DEFAULT_ALPHA else [])]
        elif self.n_m is not None:
            parts = [self.method, f"{self.n_m[0]}:{self.n_m[1]}"]
        elif self.sparsity is not None:
            parts = [self.method, str(self.sparsity)]
        else:
            parts = [self.method, str(self.bits)]
        if self.is_quantization and self.group_size != DEFAULT_GROUP_SIZE:
            parts.append(f"g{self.group_size}")
        if self.act_order:
            parts.append("act")
        if self.is_calibrated:
            if self.seed != DEFAULT_SEED:
                parts.append(f"seed{self.seed}")
            if self.n_samples is not None:
                parts.append(f"ns{self.n_samples}")
            if self.damp != DEFAULT_DAMP and self.method in ("sparsegpt", "gptq"):
                parts.append(f"damp{self.damp:g}")
            if self.sink != DEFAULT_SINK and self.method in ("sparsegpt", "gptq"):
                parts.append(f"sink{self.sink}")
            if self.calibration != DEFAULT_CALIBRATION:
                parts.append(f"cal={self.calibration}")  # last: its value may contain dashes
        return "-".join(parts)

    @property
    def cal_samples(self) -> int:
        """The calibration window count this spec runs with (the GPU default when unset)."""
        return DEFAULT_CAL_SAMPLES if self.n_samples is None else self.n_samples

    def for_device(self, device_type: str) -> CompressionSpec:
        """The spec with its calibration count resolved for a device: an unset count is
        DEFAULT_CAL_SAMPLES on accelerators, CPU_CAL_SAMPLES on a CPU. Same canonical spelling
        for the user; the identity (and so every cache key) carries the resolved count."""
        if not self.is_calibrated or self.n_samples is not None:
            return self
        return replace(self, n_samples=CPU_CAL_SAMPLES if device_type == "cpu" else DEFAULT_CAL_SAMPLES)

    def identity(self) -> dict[str, object]:
        """Every resolved knob, including defaults: the part of a cache key that names the spec."""
        resolved = replace(self, n_samples=self.cal_samples) if self.is_calibrated else self
        data = asdict(resolved)
        if resolved.sink == DEFAULT_SINK:  # the default weighting is part of the method's version
            del data["sink"]
        for name in ("gguf_type", "per_tensor", "activations", "alpha", "block", "double_quant"):
            if data[name] in (None, False):  # fields added later enter only where set: older keys stay valid
                del data[name]
        data["n_m"] = list(self.n_m) if self.n_m else None
        data["canonical"] = resolved.canonical
        return data

    def __str__(self) -> str:
        return self.canonical


DENSE = CompressionSpec(method="dense")


def _nearest_method(word: str) -> str:
    choices = list(METHODS) + list(METHOD_ALIASES)
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.4)
    if not match:
        return "mag"
    return METHOD_ALIASES.get(match[0], match[0])


def _fail(text: str, reason: str, suggestion: str | None) -> SpecError:
    hint = f"; did you mean '{suggestion}'?" if suggestion else f"; valid examples: {EXAMPLES}"
    return SpecError(one_line(f"invalid compression spec '{text}': {reason}{hint}"))


_GPTQ_STYLE = re.compile(r"^w(\d+)(?:g(-?\d+))?$")  # "gptq-w4g128" alias


def parse_spec(text: str) -> CompressionSpec:
    """Parse one spec string; raises SpecError with the nearest valid spelling."""
    raw = text
    text = text.strip()
    if not text:
        raise _fail(raw, "empty spec", "dense")
    if text.startswith("hub:"):
        target = text[4:]
        repo, _, revision = target.partition("@")
        if not repo or " " in repo:
            raise _fail(raw, "hub: needs a repository id or a local directory", "hub:org/model@main")
        return CompressionSpec(method="hub", hub_repo=repo, hub_revision=revision or None)
    # Everything is case-insensitive except a `cal=` value (a file path or dataset name).
    # `cal=` is always the last knob, so its value may contain dashes.
    head, sep, cal_tail = text.partition("-cal=")
    lowered = head.lower()
    # `g-1` is the one knob that contains the separator; protect it before splitting.
    tokens = lowered.replace("-g-1", "-g~1").split("-")
    tokens = [t.replace("g~1", "g-1") for t in tokens]
    if sep:
        tokens.append(f"cal={cal_tail}")
    method = METHOD_ALIASES.get(tokens[0], tokens[0])
    if method == "sparse" and len(tokens) > 1 and tokens[1] == "gpt":  # "sparse-gpt-50"
        method, tokens = "sparsegpt", ["sparsegpt", *tokens[2:]]
    if method not in METHODS:
        rest = "-".join(tokens[1:])
        guess = _nearest_method(method)
        if guess in SCHEME_METHODS or guess == "dense":
            raise _fail(raw, f"unknown method '{tokens[0]}'", {"int8": "int8-w8a8"}.get(guess, guess))
        raise _fail(raw, f"unknown method '{tokens[0]}'", f"{guess}-{rest}" if rest else f"{guess}-50")
    if method == "dense":
        if len(tokens) > 1:
            raise _fail(raw, "dense takes no level or knobs", "dense")
        return DENSE
    if method in SCHEME_METHODS:
        return _parse_scheme(raw, method, [t for t in tokens[1:] if t])
    if len(tokens) < 2 or not tokens[1]:
        default_level = "4" if method in QUANT_METHODS else "q4_0" if method == "gguf" else "50"
        raise _fail(raw, "missing level", f"{method}-{default_level}")
    level, knobs = tokens[1], tokens[2:]
    fields: dict[str, object] = {"method": method}
    if method == "gguf":
        if re.fullmatch(r"(q\d_k.*|iq\d.*)", level):
            raise _fail(raw, f"{level.upper()} is a K- or i-quant, which the gguf package cannot quantize (so ours "
                        "could not be checked); gate a llama.cpp file with hub:FILE.gguf", "gguf-q4_1")
        if level not in GGUF_TYPES:
            close = difflib.get_close_matches(level, GGUF_TYPES, n=1, cutoff=0.3)
            reason = f"'{level}' is not a GGUF type this tool quantizes ({', '.join(GGUF_TYPES)})"
            raise _fail(raw, reason, f"gguf-{(close or ['q4_0'])[0]}")
        if knobs:
            raise _fail(raw, "a GGUF type takes no knobs (its block size and scales are fixed)", f"gguf-{level}")
        return CompressionSpec(method="gguf", gguf_type=level)

    if method in QUANT_METHODS:
        alias = _GPTQ_STYLE.match(level)
        if alias:
            level = alias.group(1)
            if alias.group(2) is not None:
                knobs = [f"g{alias.group(2)}", *knobs]
        if not (level.isascii() and level.isdigit()):
            raise _fail(raw, f"level '{level}' is not a bit width", f"{method}-4")
        bits = int(level)
        if not 2 <= bits <= 8:
            raise _fail(raw, f"{bits} bits is out of range 2..8", f"{method}-{min(max(bits, 2), 8)}")
        fields["bits"] = bits
    else:
        if ":" in level:
            n_text, _, m_text = level.partition(":")
            if not (n_text.isascii() and m_text.isascii() and n_text.isdigit() and m_text.isdigit()):
                raise _fail(raw, f"N:M level '{level}' is not two integers", f"{method}-2:4")
            n, m = int(n_text), int(m_text)
            if not (0 < n < m <= 64):
                raise _fail(raw, f"N:M needs 0 < N < M <= 64, got {n}:{m}", f"{method}-2:4")
            fields["n_m"] = (n, m)
        else:
            if not (level.isascii() and level.isdigit()):
                raise _fail(raw, f"level '{level}' is not a sparsity percent", f"{method}-50")
            sparsity = int(level)
            if not 1 <= sparsity <= 99:
                raise _fail(
                    raw, f"sparsity {sparsity}% is out of range 1..99",
                    f"{method}-{min(max(sparsity, 1), 99)}",
                )
            fields["sparsity"] = sparsity

    base = f"{method}-{level}"
    for knob in knobs:
        _apply_knob(raw, base, method, knob, fields)
    return CompressionSpec(**fields)  # type: ignore[arg-type]


def _parse_scheme(raw: str, method: str, knobs: list[str]) -> CompressionSpec:
    """fp8[-dyn][-tensor], int8-w8a8[-alphaA][-seedN][-nsN][-cal=NAME], nf4|fp4[-bN][-dq]."""
    fields: dict[str, object] = {"method": method}
    if method == "int8":
        if not knobs or knobs[0] != "w8a8":
            raise _fail(raw, "int8 is offered as W8A8 (int8 weights per channel, activations per token)", "int8-w8a8")
        fields.update(activations="int8", alpha=DEFAULT_ALPHA)
        for knob in knobs[1:]:
            _apply_knob(raw, "int8-w8a8", method, knob, fields)
        return CompressionSpec(**fields)  # type: ignore[arg-type]
    if method != "fp8":
        fields["block"] = DEFAULT_BLOCK
    for knob in knobs:
        if method == "fp8" and knob == "dyn":
            fields["activations"] = "fp8"
        elif method == "fp8" and knob == "tensor":
            fields["per_tensor"] = True
        elif method != "fp8" and knob == "dq":
            fields["double_quant"] = True
        elif method != "fp8" and (m := re.fullmatch(r"b(\d+)", knob)):
            if int(m.group(1)) not in BLOCK_SIZES:
                raise _fail(raw, f"block size {m.group(1)} is not one bitsandbytes takes "
                            f"({', '.join(map(str, BLOCK_SIZES))})", f"{method}-b{DEFAULT_BLOCK}")
            fields["block"] = int(m.group(1))
        else:
            known = "dyn: FP8 activations per token, tensor: one weight scale" if method == "fp8" else \
                "bN: block size, dq: double quantization"
            raise _fail(raw, f"unknown {method} knob '{knob}' ({known})", f"{method}-dyn" if method == "fp8" else
                        f"{method}-dq")
    return CompressionSpec(**fields)  # type: ignore[arg-type]


def _apply_knob(raw: str, base: str, method: str, knob: str, fields: dict[str, object]) -> None:
    calibrated = method in CALIBRATED_METHODS
    if m := re.fullmatch(r"g(-?\d+)", knob):
        if method not in QUANT_METHODS:
            raise _fail(raw, f"group size applies to quantization only, not {method}", base)
        size = int(m.group(1))
        if size != -1 and size < 1:
            raise _fail(raw, f"group size {size} must be positive or -1 (per row)", f"{base}-g128")
        fields["group_size"] = size
    elif knob in ("act", "actorder", "act_order", "desc"):
        if method != "gptq":
            raise _fail(raw, "act-order is a GPTQ knob", f"gptq-{base.split('-', 1)[1]}-act")
        fields["act_order"] = True
    elif m := re.fullmatch(r"seed(\d+)", knob):
        if not calibrated:
            raise _fail(raw, f"{method} uses no calibration data, so no seed", base)
        fields["seed"] = int(m.group(1))
    elif m := re.fullmatch(r"ns(\d+)", knob):
        if not calibrated:
            raise _fail(raw, f"{method} uses no calibration data", base)
        count = int(m.group(1))
        if count < 1:
            raise _fail(raw, "calibration sample count must be >= 1", f"{base}-ns128")
        fields["n_samples"] = count
    elif knob.startswith("cal="):
        if not calibrated:
            raise _fail(raw, f"{method} uses no calibration data", base)
        name = knob[4:]
        if not name:
            raise _fail(raw, "cal= needs a name or a path", f"{base}-cal={DEFAULT_CALIBRATION}")
        fields["calibration"] = name
    elif m := re.fullmatch(r"damp(\d*\.?\d+(?:e-?\d+)?)", knob):
        if method not in ("sparsegpt", "gptq"):
            raise _fail(raw, "damp applies to sparsegpt and gptq", base)
        damp = float(m.group(1))
        if not 0 < damp < 1:
            raise _fail(raw, f"damp {damp} must be in (0, 1)", f"{base}-damp0.01")
        fields["damp"] = damp
    elif method == "int8" and (m := re.fullmatch(r"alpha(\d*\.?\d+)", knob)):
        if not 0 <= float(m.group(1)) <= 1:
            raise _fail(raw, f"SmoothQuant's alpha {m.group(1)} must be in [0, 1]", f"{base}-alpha0.5")
        fields["alpha"] = float(m.group(1))
    elif m := re.fullmatch(r"sink(\d+)", knob):
        if method not in ("sparsegpt", "gptq"):
            raise _fail(raw, "sink applies to sparsegpt and gptq (their Hessians)", base)
        weight = int(m.group(1))
        if weight < 1:
            raise _fail(raw, "sink weight must be >= 1 (1 = no weighting, as the references)", f"{base}-sink1")
        fields["sink"] = weight
    else:
        known = ["g128", "g-1", "act", "seed0", "ns128", "cal=NAME", "damp0.01", "sink1"]
        guess = difflib.get_close_matches(knob, known, n=1, cutoff=0.3)
        raise _fail(raw, f"unknown knob '{knob}'", f"{base}-{guess[0]}" if guess else base)


def parse_specs(values: Iterable[str]) -> list[CompressionSpec]:
    """Parse repeated and/or comma-separated specs; duplicates (same canonical form) collapse."""
    specs: list[CompressionSpec] = []
    seen: set[str] = set()
    for value in values:
        for part in _split_commas(value):
            spec = parse_spec(part)
            if spec.canonical not in seen:
                seen.add(spec.canonical)
                specs.append(spec)
    return specs


def _split_commas(value: str) -> list[str]:
    # A comma inside `cal=` (a path) is not expected; plain split keeps the grammar simple.
    parts = [p for p in (s.strip() for s in value.split(",")) if p]
    if not parts:
        raise SpecError(one_line(f"invalid compression spec '{value}': empty; valid examples: {EXAMPLES}"))
    return parts


_SAFE = str.maketrans({"@": "_", "/": "_", ":": "_"})


def safe_name(config: str) -> str:
    """A config ("dense" or a canonical spec) as a test id `-k` can select and a folder name any
    filesystem takes: `@`, `/` and `:` become `_` ("wanda-2:4" -> "wanda-2_4")."""
    return config.translate(_SAFE)
