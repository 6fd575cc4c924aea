"""Options without pytest: the one table of flags, and raw values -> a checked TrustOptions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from comptrust_plugin import dimensions
from comptrust_plugin.errors import TrustError
from comptrust_plugin.flags import OPTIONS
from comptrust_plugin.options import TrustOptions, read_options
from comptrust_plugin.spec import parse_spec


def _raw(**given: Any) -> dict[str, Any]:
    """What a fresh command line gives: each option's ini default where it has one, else unset."""
    values: dict[str, Any] = {}
    for option in OPTIONS:
        if option.kind == "flag":
            values[option.dest] = False
        elif option.ini is not None:
            values[option.dest] = [option.ini] if option.kind == "append" else option.ini
        else:
            values[option.dest] = None
    values.update(given)
    return values


def test_every_flag_is_declared_once_with_help() -> None:
    flags = [option.flag for option in OPTIONS]
    dests = [option.dest for option in OPTIONS]
    assert len(set(flags)) == len(flags) and len(set(dests)) == len(dests)
    assert all(option.help for option in OPTIONS)
    assert all(option.flag.startswith("--trust-") for option in OPTIONS)
    aliases = [option.alias for option in OPTIONS if option.alias]
    assert sorted(aliases) == ["--compress", "--model"] and not set(aliases) & set(flags)


def test_every_option_has_an_ini_key_except_the_two_that_run_code() -> None:
    """A checked-in ini file may set anything but what lets a model repository or a checkpoint run code."""
    no_ini = sorted(option.flag for option in OPTIONS if option.ini is None)
    assert no_ini == ["--trust-allow-pickle", "--trust-remote-code"]
    assert all(option.ini in ("", None) for option in OPTIONS if option.kind == "flag")


def test_option_defaults_equal_the_gate_defaults() -> None:
    from comptrust_plugin import flags, gate, paired

    assert flags.BOOTSTRAP_DEFAULT == paired.BOOTSTRAP_REPLICATES
    assert flags.REFUSAL_SHIFT_DEFAULT == gate.REFUSAL_SHIFT_FLAG


def test_defaults_read_as_the_default_options(tmp_path: Path) -> None:
    options = read_options(_raw(trust_cache_dir=str(tmp_path)).get)
    assert options == TrustOptions(cache_dir=tmp_path)
    options.validate()


def test_values_parse_into_their_types(tmp_path: Path) -> None:
    options = read_options(_raw(
        trust_compress=["wanda-50,gptq-4", "wanda-50"], trust_seed="3", trust_samples="12",
        trust_tolerance="5,fairness=10", trust_bootstrap="0", trust_refusal_shift="2.5",
        trust_batch_tokens="4096", trust_baseline=str(tmp_path / "b.json"), trust_update_baseline=True,
    ).get)
    assert options.specs == (parse_spec("wanda-50"), parse_spec("gptq-4"))
    assert (options.seed, options.samples, options.bootstrap, options.refusal_shift) == (3, 12, 0, 2.5)
    limit = options.tolerance.for_dimension
    assert limit("fairness").value == 10 and limit("privacy").value == 5 and not limit("fairness").relative
    assert options.batch_tokens == 4096 and options.baseline == tmp_path / "b.json" and options.update_baseline


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"trust_seed": "-1"}, "--trust-seed=-1: use a non-negative integer"),
        ({"trust_bootstrap": "many"}, "--trust-bootstrap=many: use a whole number of replicates"),
        ({"trust_refusal_shift": "lots"}, "--trust-refusal-shift=lots: use a number of points"),
        ({"trust_batch_tokens": "8k"}, "--trust-batch-tokens=8k: use a whole number of token slots"),
        ({"trust_samples": "some"}, "--trust-samples=some: use smoke, full, or a positive integer"),
        ({"trust_tolerance": "5,toxcity=3"}, "unknown dimension 'toxcity'"),
    ],
)
def test_a_bad_value_is_one_line(given: dict[str, Any], message: str) -> None:
    with pytest.raises(TrustError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        read_options(_raw(**given).get)
    assert "\n" not in str(caught.value)


def test_tolerance_names_come_from_the_registry() -> None:
    for name in dimensions.names():
        assert read_options(_raw(trust_tolerance=f"5,{name}=1").get).tolerance.for_dimension(name).value == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (TrustOptions(variant="paper"), "--trust-scoring=paper: choose one of comptrust-paper, dt"),
        (TrustOptions(device="gpu0"), "--trust-device=gpu0"),
        (TrustOptions(dtype="int8"), "--trust-dtype=int8: choose one of"),
        (TrustOptions(update_baseline=True), "--trust-update-baseline needs --trust-baseline=PATH"),
        (TrustOptions(batch_tokens=8), "--trust-batch-tokens=8: use at least 64"),
        (TrustOptions(interval="bootstrap-t"), "--trust-interval=bootstrap-t: choose one of percentile, bca"),
        (TrustOptions(calibration_seeds=0), r"--trust-calibration-seeds=0: use 1\.\.10"),
        (TrustOptions(interval="bca", calibration_seeds=3), "bca: the interval over calibration seeds"),
        (TrustOptions(interval="bca", gate="confident"), "add --trust-multiplicity=none to gate on the BCa interval"),
        (TrustOptions(multiplicity="bonferroni"), "--trust-multiplicity=bonferroni: choose one of holm, bh, none"),
    ],
)
def test_validate_refuses_in_one_line(options: TrustOptions, message: str) -> None:
    with pytest.raises(TrustError, match=message):
        options.validate()
