"""The --compress grammar: canonical spellings, resolved identities, and one-line errors."""

from __future__ import annotations

import pytest

from comptrust_plugin.spec import DENSE, SpecError, parse_spec, parse_specs


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("dense", "dense"),
        ("mag-50", "mag-50"),
        ("magnitude-50", "mag-50"),
        ("MAG-50", "mag-50"),
        ("wanda-2:4", "wanda-2:4"),
        ("sparsegpt-4:8", "sparsegpt-4:8"),
        ("sparse-gpt-60", "sparsegpt-60"),
        ("rtn-4", "rtn-4"),
        ("rtn-4-g128", "rtn-4"),
        ("rtn-3-g-1", "rtn-3-g-1"),
        ("gptq-4-g64-act", "gptq-4-g64-act"),
        ("gptq-w4g128", "gptq-4"),
        ("gptq-4-seed3-ns64-damp0.05", "gptq-4-seed3-ns64-damp0.05"),
        ("gptq-4-sink1", "gptq-4-sink1"),
        ("sparsegpt-50-sink128", "sparsegpt-50"),
        ("awq-4-cal=mydata.txt", "awq-4-cal=mydata.txt"),
        ("wanda-50-seed0", "wanda-50"),
        ("hub:compressed-llm/llama-2-13b-chat-gptq@4bit_128g", "hub:compressed-llm/llama-2-13b-chat-gptq@4bit_128g"),
    ],
)
def test_canonical_spelling(text: str, canonical: str) -> None:
    assert parse_spec(text).canonical == canonical


def test_canonical_round_trips() -> None:
    for text in ("mag-50", "wanda-2:4", "gptq-3-g-1-act-seed2", "awq-8-ns32", "rtn-2-g32"):
        spec = parse_spec(text)
        assert parse_spec(spec.canonical) == spec


def test_identity_lists_defaults_so_spellings_share_a_key() -> None:
    a, b = parse_spec("gptq-4"), parse_spec("gptq-4-g128-seed0-ns128")
    assert a.identity() == b.identity()
    assert a.identity()["group_size"] == 128 and a.identity()["n_samples"] == 128
    assert parse_spec("gptq-4").identity() != parse_spec("gptq-4-seed1").identity()


def test_calibration_count_defaults_by_device() -> None:
    """An unset count is 128 windows on a GPU and 16 on a CPU; the user's spelling stays, the
    identity (every cache key) carries the count that ran; an explicit count always wins."""
    spec = parse_spec("wanda-50")
    on_cpu, on_gpu = spec.for_device("cpu"), spec.for_device("cuda")
    assert spec.canonical == "wanda-50" and on_gpu.identity() == spec.identity()
    assert on_cpu.cal_samples == 16 and on_gpu.cal_samples == 128
    assert on_cpu.identity() != on_gpu.identity() and on_cpu.identity()["n_samples"] == 16
    explicit = parse_spec("wanda-50-ns128")
    assert explicit.canonical == "wanda-50-ns128" and explicit.for_device("cpu").cal_samples == 128
    assert parse_spec("rtn-4").for_device("cpu") == parse_spec("rtn-4")


def test_fields() -> None:
    spec = parse_spec("sparsegpt-2:4")
    assert spec.n_m == (2, 4) and spec.sparsity is None and spec.is_pruning and spec.is_calibrated
    spec = parse_spec("rtn-4")
    assert spec.bits == 4 and spec.is_quantization and not spec.is_calibrated
    assert parse_spec("dense") is DENSE and DENSE.is_dense


@pytest.mark.parametrize(
    ("text", "reason", "suggestion"),
    [
        ("wanda-0", "out of range 1..99", "wanda-1"),
        ("wanda-100", "out of range 1..99", "wanda-99"),
        ("gptq-1", "out of range 2..8", "gptq-2"),
        ("gptq-9", "out of range 2..8", "gptq-8"),
        ("wanda-4:4", "N < M", "wanda-2:4"),
        ("wanda-5:4", "N < M", "wanda-2:4"),
        ("wandaa-50", "unknown method", "wanda-50"),
        ("gtpq-4", "unknown method", "gptq-4"),
        ("gptq-4-actt", "unknown knob", "gptq-4-act"),
        ("rtn-4-act", "act-order is a GPTQ knob", "gptq-4-act"),
        ("mag-50-g128", "group size applies to quantization", "mag-50"),
        ("mag-50-seed3", "no calibration data", "mag-50"),
        ("gptq", "missing level", "gptq-4"),
        ("mag-abc", "not a sparsity percent", "mag-50"),
        ("dense-4", "dense takes no level", "dense"),
        ("awq-4-sink1", "sink applies to sparsegpt and gptq", "awq-4"),
        ("gptq-4-sink0", "sink weight must be >= 1", "gptq-4-sink1"),
        ("gguf-q4_k_m", "Q4_K_M is a K- or i-quant", "gguf-q4_1"),
        ("gguf-q4", "'q4' is not a GGUF type", "gguf-q4_1"),
        ("gguf-q8_0-g64", "takes no knobs", "gguf-q8_0"),
        ("gguf", "missing level", "gguf-q4_0"),
        ("int8", "offered as W8A8", "int8-w8a8"),
        ("int8-w4a8", "offered as W8A8", "int8-w8a8"),
        ("int8-w8a8-alpha2", "must be in [0, 1]", "int8-w8a8-alpha0.5"),
        ("int8-w8a8-damp0.1", "damp applies", "int8-w8a8"),
        ("fp8-dq", "unknown fp8 knob", "fp8-dyn"),
        ("nf4-b63", "not one bitsandbytes takes", "nf4-b64"),
        ("nf4-dyn", "unknown nf4 knob", "nf4-dq"),
        ("fp9", "unknown method", "fp8"),
        ("int9-w8a8", "unknown method", "int8-w8a8"),
    ],
)
def test_bad_specs_name_the_nearest_valid_spelling(text: str, reason: str, suggestion: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    message = str(info.value)
    assert reason in message and f"'{suggestion}'" in message
    assert "\n" not in message


def test_several_specs_comma_and_repeat_dedupe() -> None:
    specs = parse_specs(["wanda-50,gptq-4", "gptq-4-g128", "mag-2:4"])
    assert [s.canonical for s in specs] == ["wanda-50", "gptq-4", "mag-2:4"]


def test_empty_spec_is_an_error() -> None:
    with pytest.raises(SpecError):
        parse_specs([" , "])


def test_calibration_path_keeps_its_case() -> None:
    spec = parse_spec("GPTQ-4-seed2-cal=/Data/My-Corpus.txt")
    assert spec.calibration == "/Data/My-Corpus.txt" and spec.seed == 2
    assert spec.canonical == "gptq-4-seed2-cal=/Data/My-Corpus.txt"
    assert parse_spec(spec.canonical) == spec


def test_the_sink_knob_is_the_hessians_weight_and_keys_only_when_set() -> None:
    """`sink1` is the references' unweighted Hessian; the default (our weighting, part of the
    method's version) keeps the identity, so cached results of `gptq-4` stay valid."""
    from comptrust_plugin.compress.hessian import SINK_WEIGHT
    from comptrust_plugin.spec import DEFAULT_SINK

    assert DEFAULT_SINK == SINK_WEIGHT
    assert "sink" not in parse_spec("gptq-4").identity()
    assert parse_spec("gptq-4-sink1").identity()["sink"] == 1 and parse_spec("gptq-4-sink1").sink == 1
    assert parse_spec("gptq-4-sink1").identity() != parse_spec("gptq-4").identity()


def test_gguf_types_parse_with_their_own_identity() -> None:
    assert parse_spec("GGUF-Q8_0").canonical == "gguf-q8_0" and parse_spec("gguf-q4_1").gguf_type == "q4_1"
    assert parse_spec("gguf-q5_0").identity()["gguf_type"] == "q5_0"
    assert "gguf_type" not in parse_spec("gptq-4").identity()  # keys of other specs unchanged
    # its mistakes are cases of test_bad_specs_name_the_nearest_valid_spelling


def test_scheme_methods_parse_round_trip_and_keep_older_keys() -> None:
    cases = {
        "fp8": dict(activations=None, per_tensor=False), "FP8-dyn": dict(activations="fp8"),
        "fp8-dyn-tensor": dict(activations="fp8", per_tensor=True),
        "int8-w8a8": dict(activations="int8", alpha=0.5), "int8-w8a8-alpha0.8-seed2-ns8": dict(alpha=0.8, seed=2),
        "nf4": dict(block=64, double_quant=False), "fp4-b128-dq": dict(block=128, double_quant=True),
    }
    for text, fields in cases.items():
        spec = parse_spec(text)
        assert parse_spec(spec.canonical) == spec and spec.is_scheme
        assert all(getattr(spec, name) == value for name, value in fields.items()), text
    assert parse_spec("int8-w8a8-alpha0.5").canonical == "int8-w8a8" and parse_spec("int8-w8a8").is_calibrated
    identities = {text: parse_spec(text).identity() for text in ("fp8", "fp8-dyn", "fp8-tensor", "nf4", "nf4-dq")}
    assert len({str(sorted(i.items())) for i in identities.values()}) == len(identities)
    for older in ("gptq-4", "wanda-50", "gguf-q4_0", "dense"):  # the new fields stay out of earlier keys
        assert not {"per_tensor", "activations", "alpha", "block", "double_quant"} & set(parse_spec(older).identity())


def test_the_grammar_knows_bitsandbytes_block_sizes() -> None:
    from comptrust_plugin.compress import nf4
    from comptrust_plugin.spec import BLOCK_SIZES, DEFAULT_BLOCK

    assert BLOCK_SIZES == nf4.BLOCKS and DEFAULT_BLOCK == nf4.DEFAULT_BLOCK
