"""Property tests: no input makes a user-facing parser raise anything but its documented error.

The spec grammar raises SpecError, the tolerance, samples and gate parsers TrustError; every
accepted spec round-trips through its canonical spelling.
"""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis")  # a dev extra; .ci/run installs it
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from comptrust_plugin.dimensions import names  # noqa: E402
from comptrust_plugin.errors import TrustError  # noqa: E402
from comptrust_plugin.gate import parse_gate, parse_tolerance  # noqa: E402
from comptrust_plugin.options import parse_samples  # noqa: E402
from comptrust_plugin.spec import CompressionSpec, SpecError, parse_spec, parse_specs  # noqa: E402

# Pieces of the grammar, glued at random, reach deep into the parser far more often than
# arbitrary text does; arbitrary text covers the rest.
PIECES = st.sampled_from([
    "mag", "wanda", "sparsegpt", "gptq", "awq", "rtn", "hub:", "dense", "-", ":", ",", "50", "0", "100",
    "2:4", "4:8", "8:4", "4", "3", "9", "1", "g128", "g-1", "g0", "act", "ns16", "ns0", "seed7",
    "sl512", "cal=", "damp0.01", "x", " ", "%", "@", "org/model", "1e9", "-5", "nan", "¹", "²:⁴", "٣",
])
SPEC_TEXT = st.one_of(st.text(max_size=40), st.lists(PIECES, max_size=8).map("".join))
TOLERANCE_TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from([*names(), "toxcity", "=", ",", "5", "-1", "101", "nan", "inf", "2.5", " "]),
             max_size=8).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(SPEC_TEXT)
def test_spec_parser_raises_only_spec_errors_and_round_trips(text: str) -> None:
    try:
        spec = parse_spec(text)
    except SpecError as exc:
        assert str(exc) and "\n" not in str(exc)  # one line
        return
    assert isinstance(spec, CompressionSpec)
    assert parse_spec(spec.canonical).canonical == spec.canonical


@settings(max_examples=200, deadline=None)
@given(st.lists(SPEC_TEXT, max_size=3))
def test_spec_lists_raise_only_spec_errors(values: list[str]) -> None:
    try:
        specs = parse_specs(values)
    except SpecError:
        return
    assert len({s.canonical for s in specs}) == len(specs)


@settings(max_examples=400, deadline=None)
@given(TOLERANCE_TEXT)
def test_tolerance_parser_raises_only_trust_errors(text: str) -> None:
    try:
        tolerance = parse_tolerance(text, names())
    except TrustError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for name in names():
        limit = tolerance.for_dimension(name)
        assert 0 <= limit.value <= 100 and 0 <= limit.points(100.0) <= 100


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=12), st.integers(-5, 10**6).map(str)))
def test_samples_and_gate_parsers_raise_only_trust_errors(text: str) -> None:
    for parse in (parse_samples, parse_gate):
        try:
            value = parse(text)
        except TrustError as exc:
            assert "\n" not in str(exc)
            continue
        assert value in ("smoke", "full", "point", "confident") or (isinstance(value, int) and value > 0)
