"""Tolerance syntax, the point and confident gates, and the paired bootstrap."""

from __future__ import annotations

import random

import pytest

from comptrust_plugin.dimensions.agreement import Agreement, cohen_kappa
from comptrust_plugin.dimensions.result import DimensionResult, ItemOutcome
from comptrust_plugin.errors import TrustError
from comptrust_plugin.gate import Limit, gate, parse_floors, parse_tolerance
from comptrust_plugin.paired import MDD_FACTOR, Interval, McNemar, mcnemar, paired_bootstrap

DIMS = ["toxicity", "fairness", "machine_ethics"]


def test_tolerance_default_and_overrides() -> None:
    tol = parse_tolerance("5", DIMS)
    assert tol.for_dimension("toxicity") == Limit(5)
    tol = parse_tolerance("toxicity=3,fairness=10", DIMS)
    assert [tol.for_dimension(d).value for d in ("toxicity", "fairness", "machine_ethics")] == [3, 10, 5]
    tol = parse_tolerance("7, toxicity=2.5", DIMS)
    assert tol.for_dimension("machine_ethics") == Limit(7) and tol.for_dimension("toxicity") == Limit(2.5)


def test_relative_tolerance_is_a_share_of_the_dense_score() -> None:
    """5% = recovery >= 95%: at dense 80 the compressed score may drop 4 points, no more."""
    tol = parse_tolerance("5%,toxicity=2", DIMS)
    limit = tol.for_dimension("fairness")
    assert limit == Limit(5, relative=True) and limit.points(80.0) == 4.0 and str(limit) == "5%"
    assert tol.for_dimension("toxicity").points(80.0) == 2.0
    assert tol.to_json() == {"default": "5%", "toxicity": 2.0}
    agreement = Agreement(10, 2, 20.0, 0.5)
    ok = gate(_result(80), _result(76), "gptq-4", limit.points(80), agreement, rule=str(limit))
    bad = gate(_result(80), _result(75.9), "gptq-4", limit.points(80), agreement, rule=str(limit))
    assert (ok.status, bad.status) == ("pass", "FAIL") and "tolerance 5% = 4" in bad.message()
    assert parse_tolerance("machine_ethics=10%", DIMS).for_dimension("machine_ethics").points(50) == 5


def test_floors_warn_and_never_fail() -> None:
    floors = parse_floors("toxicity=80, fairness=60.5", DIMS)
    assert floors == {"toxicity": 80.0, "fairness": 60.5} and parse_floors("", DIMS) == {}
    agreement = Agreement(10, 0, 0.0, 1.0)
    under = gate(_result(79), _result(79), "rtn-8", 5, agreement, floor=80)
    assert under.status == "pass" and under.below_floor and "below its floor 80" in under.message()
    assert not gate(_result(79), _result(81), "rtn-8", 5, agreement, floor=80).below_floor
    for text, fragment in [("80", "names no dimension"), ("toxcity=80", "unknown dimension"),
                           ("toxicity=80%", "not a percent"), ("toxicity=101", "between 0 and 100")]:
        with pytest.raises(TrustError, match=fragment):
            parse_floors(text, DIMS)


def _binary(values: dict[str, float | None]) -> list[ItemOutcome]:
    return [ItemOutcome(key, "all", "a", value, "") for key, value in values.items()]


def test_mcnemar_is_scipys_exact_binomial_on_the_discordant_pairs() -> None:
    from scipy.stats import binomtest

    dense = _binary({f"k{i}": 1.0 if i < 30 else 0.0 for i in range(50)})
    # 12 items lost (favourable -> not), 3 gained, one item without a value, one only in dense
    after = {f"k{i}": (0.0 if i < 12 else 1.0) if i < 30 else (1.0 if i < 33 else 0.0) for i in range(49)}
    after["k40"] = None
    test = mcnemar(dense, _binary(after))
    assert test is not None and (test.worse, test.better) == (12, 3)
    assert test.p == binomtest(12, 15, 0.5).pvalue and 0.03 < test.p < 0.04
    assert mcnemar(dense, dense) == McNemar(0, 0, 1.0)
    assert mcnemar(dense, _binary({"k0": 0.5})) is None  # not binary: no exact test
    verdict = gate(_result(60), _result(42), "mag-50", 5, Agreement(15, 15, 100.0, 0.0))
    assert verdict.mcnemar is None  # these results carry no outcomes


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("toxcity=3", "unknown dimension 'toxcity'"), ("abc", "not a number"), ("-1", "between 0 and 100"),
     ("120%", "between 0 and 100 percent"), ("%", "not a number"),
     ("toxicity=200", "between 0 and 100"), ("", "empty"), ("nan", "between 0 and 100")],
)
def test_bad_tolerance(text: str, fragment: str) -> None:
    with pytest.raises(TrustError, match=fragment):
        parse_tolerance(text, DIMS)


def _result(score: float, refusal: float = 0.0) -> DimensionResult:
    return DimensionResult("machine_ethics", "comptrust-paper", score, {}, 10, refusal, 0.0)


def test_gate_fails_only_beyond_tolerance() -> None:
    agreement = Agreement(10, 2, 20.0, 0.5)
    assert gate(_result(60), _result(55), "mag-50", 5, agreement).status == "pass"
    assert gate(_result(60), _result(54.9), "mag-50", 5, agreement).status == "FAIL"
    assert gate(_result(60), _result(90), "mag-50", 0, agreement).status == "pass"


def test_gate_message_states_everything() -> None:
    verdict = gate(_result(60, 5), _result(40, 30), "mag-50", 5, Agreement(10, 4, 40.0, 0.1))
    text = verdict.message()
    for part in ("compressed 40.0", "dense 60.0", "delta -20.0", "tolerance 5", "40.0%", "+25.0 points"):
        assert part in text
    assert verdict.refusal_flag


def test_profile_has_no_gate() -> None:
    verdict = gate(_result(60), None, "dense", 5, None)
    assert verdict.status == "profile" and verdict.passed and verdict.delta is None


def test_cohen_kappa_known_values() -> None:
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == 1.0
    # observed 0.5, expected 0.5 -> kappa 0
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == 0.0
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None


# ------------------------------------------------------------------ paired bootstrap
def _outcomes(values: list[float]) -> list[ItemOutcome]:
    return [ItemOutcome(f"item{i}", "all", str(v), v, "") for i, v in enumerate(values)]


def _mean_score(outcomes: list[ItemOutcome]) -> float:
    return 100.0 * sum(o.value or 0.0 for o in outcomes) / len(outcomes)


def test_bootstrap_interval_covers_the_true_delta_at_about_the_nominal_rate() -> None:
    """Paired Bernoulli items, dense right with p=0.6, compressed with p=0.5 (true delta -10):
    over many seeds the 95% interval holds -10 about 95% of the time."""
    trials, covered, widths = 150, 0, []
    for seed in range(trials):
        rng = random.Random(seed)
        dense = [float(rng.random() < 0.6) for _ in range(200)]
        compressed = [float(rng.random() < 0.5) for _ in range(200)]
        interval = paired_bootstrap(_outcomes(dense), _outcomes(compressed), _mean_score, replicates=400, seed=seed)
        assert interval is not None and interval.units == 200
        covered += interval.low <= -10.0 <= interval.high
        widths.append(interval.high - interval.low)
    assert 0.90 <= covered / trials <= 0.99, covered / trials
    # analytic SE of a difference of two independent proportions at n=200: ~4.9 points
    assert 2 * 1.96 * 4.0 < sum(widths) / trials < 2 * 1.96 * 6.0


def test_bootstrap_is_paired_seeded_and_reports_the_detectable_difference() -> None:
    rng = random.Random(1)
    dense = [float(rng.random() < 0.6) for _ in range(100)]
    same = paired_bootstrap(_outcomes(dense), _outcomes(dense), _mean_score, replicates=200, seed=3)
    assert same is not None and same.low == same.high == 0.0 and same.mdd == 0.0
    flipped = dense[:]
    flipped[:5] = [1.0 - v for v in flipped[:5]]  # 5 answers changed: a paired interval stays narrow
    one = paired_bootstrap(_outcomes(dense), _outcomes(flipped), _mean_score, replicates=300, seed=3)
    again = paired_bootstrap(_outcomes(dense), _outcomes(flipped), _mean_score, replicates=300, seed=3)
    assert one == again and one is not None and one.high - one.low < 12
    assert one.mdd == pytest.approx(MDD_FACTOR * one.se)
    assert paired_bootstrap([], _outcomes(dense), _mean_score) is None


def test_bootstrap_resamples_whole_units() -> None:
    """Twins of one unit always travel together: with a unit that pairs item 2k and 2k+1 whose
    values always sum to 1, every replicate of the dense score is exactly 50."""
    outcomes = [ItemOutcome(f"u{i // 2}/{i % 2}", "all", "", float(i % 2), "") for i in range(40)]
    seen: list[float] = []

    def record(chosen: list[ItemOutcome]) -> float:
        seen.append(_mean_score(chosen))
        return seen[-1]

    paired_bootstrap(outcomes, outcomes, record, unit=lambda key: key.split("/")[0], replicates=50)
    assert set(seen) == {50.0}


def _interval(low: float, high: float) -> Interval:
    return Interval(low, high, 0.95, 1000, 1.0, 100)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(-9.0, -6.0, "FAIL"), (-7.0, 1.0, "inconclusive"), (-4.0, 2.0, "pass")],
)
def test_confident_gate(low: float, high: float, expected: str) -> None:
    agreement = Agreement(10, 2, 20.0, 0.5)
    verdict = gate(_result(60), _result(52), "mag-50", 5, agreement, _interval(low, high), "confident")
    assert verdict.status == expected
    assert verdict.passed == (expected != "FAIL")
    # the point gate judges the same drop of 8 on its point value alone
    assert gate(_result(60), _result(52), "mag-50", 5, agreement, _interval(low, high)).status == "FAIL"


def test_refusal_shift_is_flagged_and_optionally_fails() -> None:
    agreement = Agreement(10, 2, 20.0, 0.5)
    flagged = gate(_result(60, 0), _result(60, 15), "rtn-4", 5, agreement)
    assert flagged.refusal_flag and flagged.status == "pass"
    failed = gate(_result(60, 0), _result(60, 15), "rtn-4", 5, agreement, fail_on_refusal_shift=True)
    assert failed.status == "FAIL" and "refusal rate moved +15.0" in failed.message()
    quiet = gate(_result(60, 0), _result(60, 15), "rtn-4", 5, agreement, refusal_threshold=20)
    assert not quiet.refusal_flag


def _labelled(answers: list[str], values: list[float], unparsed: float = 0.0) -> DimensionResult:
    outcomes = tuple(ItemOutcome(f"k{i}", "all", a, v, "") for i, (a, v) in enumerate(zip(answers, values)))
    score = 100.0 * sum(values) / len(values)
    return DimensionResult("fairness", "comptrust-paper", score, {}, len(values), 0.0, unparsed, outcomes)


def test_a_pass_that_could_not_fail_says_no_evidence() -> None:
    agreement = Agreement(20, 0, 0.0, None)
    same = _labelled(["yes"] * 20, [1.0] * 20)
    frozen = Interval(0.0, 0.0, 0.95, 1000, 0.0, 20)  # the embedded model's fairness: 100 vs 100, [0, 0]
    verdict = gate(same, same, "wanda-50", 5, agreement, frozen, label_answers=True)
    assert verdict.status == "no evidence" and verdict.passed and "on 100% of the 20 items ('yes')" in verdict.message()
    ceiling = _labelled([f"label{i}" for i in range(20)], [1.0] * 20)  # all right: a fall would show
    assert gate(ceiling, ceiling, "wanda-50", 5, agreement, frozen, label_answers=True).status == "pass"
    constant = _labelled(["yes"] * 19 + ["no"], [1.0] * 10 + [0.0] * 10)
    moved = _labelled(["yes"] * 12 + ["no"] * 8, [1.0] * 9 + [0.0] * 11)
    labels = gate(constant, moved, "wanda-50", 10, agreement, label_answers=True)
    assert labels.status == "no evidence" and "on 95% of the 20 items ('yes')" in labels.reason
    assert gate(constant, moved, "wanda-50", 10, agreement).status == "pass"  # not a label dimension
    varied = _labelled(["yes"] * 18 + ["no"] * 2, [1.0] * 10 + [0.0] * 10)
    assert gate(varied, moved, "wanda-50", 10, agreement, label_answers=True).status == "pass"  # 90% < 95%
    assert gate(constant, _labelled(["no"] * 20, [0.0] * 20), "mag-50", 5, agreement,
                label_answers=True).status == "FAIL"  # a drop is evidence, whatever the dense labels


def test_one_answer_per_subset_is_no_evidence_too() -> None:
    """The embedded model's fairness: 'no' throughout two settings, 'yes' throughout the third, the
    same for both twins: parity 0 in every setting whatever the model knows."""
    outcomes = tuple(ItemOutcome(f"{setting}/p{i}", setting, "yes" if setting == "few_shot_fair" else "no", 1.0, "")
                     for setting in ("zero_shot", "few_shot_unfair", "few_shot_fair") for i in range(32))
    dense = DimensionResult("fairness", "comptrust-paper", 100.0, {}, 96, 0.0, 0.0, outcomes)
    verdict = gate(dense, dense, "nf4", 5, Agreement(96, 0, 0.0, 1.0), label_answers=True)
    assert verdict.status == "no evidence"
    assert "on 100% of the 96 items ('yes' in few_shot_fair, 'no' in" in verdict.reason
    tiny = tuple(ItemOutcome(f"k{i}", f"s{i}", "yes" if i % 2 else "no", 1.0, "") for i in range(40))  # 1 item each
    spread = DimensionResult("fairness", "comptrust-paper", 50.0, {}, 40, 0.0, 0.0, tiny)
    assert gate(spread, spread, "nf4", 5, Agreement(40, 0, 0.0, 1.0), label_answers=True).status == "pass"


def test_a_gain_with_most_outputs_unparsed_is_capability_loss() -> None:
    agreement = Agreement(20, 15, 75.0, 0.02)
    dense = _labelled(["a"] * 10 + ["b"] * 10, [0.0] * 12 + [1.0] * 8, unparsed=5.0)
    collapsed = _labelled(["<unparsed>"] * 20, [1.0] * 20, unparsed=80.0)
    verdict = gate(dense, collapsed, "mag-50", 5, agreement)
    assert verdict.status == "capability loss" and verdict.passed
    assert "80% of the compressed model's outputs" in verdict.reason and "+60.0 is not an improvement" in verdict.reason
    mild = _labelled(["<unparsed>"] * 20, [1.0] * 20, unparsed=40.0)
    assert gate(dense, mild, "mag-50", 5, agreement).status == "pass"  # under half unparsed


def test_bca_levels_follow_efrons_formula() -> None:
    from statistics import NormalDist

    from comptrust_plugin.paired import _bca_quantiles

    ordered = [float(i) for i in range(100)]
    low, high = _bca_quantiles(49.5, ordered, [1.0, -1.0, 2.0, -2.0], 0.025)  # no bias, symmetric jackknife
    assert abs(low - 0.025) < 1e-12 and abs(high - 0.975) < 1e-12
    normal = NormalDist()
    z0 = normal.inv_cdf(0.75)  # 75 replicates below the observed value
    jackknife = [0.0, 0.0, 0.0, 3.0]  # skewed: acceleration a = sum(c^3) / (6 sum(c^2)^1.5)
    centre = sum(jackknife) / 4
    a = sum((centre - t) ** 3 for t in jackknife) / (6 * sum((centre - t) ** 2 for t in jackknife) ** 1.5)
    low, high = _bca_quantiles(74.5, ordered, jackknife, 0.025)
    for got, z in ((low, normal.inv_cdf(0.025)), (high, normal.inv_cdf(0.975))):
        assert abs(got - normal.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))) < 1e-12
    assert _bca_quantiles(-1.0, ordered, [], 0.025) is None  # every replicate above: undefined


def test_bca_interval_records_its_method_and_keeps_the_replicates() -> None:
    dense = [ItemOutcome(f"k{i}", "all", "", float(i % 3 == 0), "") for i in range(90)]
    compressed = [ItemOutcome(f"k{i}", "all", "", float(i % 3 == 0 and i % 9 != 0), "") for i in range(90)]
    mean = lambda outcomes: 100.0 * sum(o.value for o in outcomes) / len(outcomes)  # noqa: E731
    bca = paired_bootstrap(dense, compressed, mean, method="bca", replicates=400)
    plain = paired_bootstrap(dense, compressed, mean, replicates=400)
    assert bca is not None and plain is not None and bca.method == "bca" and plain.method == "percentile"
    assert bca.se == plain.se and bca.low <= -11.1 <= bca.high and (bca.low, bca.high) != (plain.low, plain.high)
    same = paired_bootstrap(dense, dense, mean, method="bca", replicates=50)  # ties count half: z0 = 0
    assert same is not None and same.low == same.high == 0.0


def test_bootstrap_gives_each_sides_standard_error_from_the_same_replicates() -> None:
    """A mean of n Bernoulli(p) items has standard error 100·sqrt(p(1-p)/n) points; the spread of
    each side's replicate scores matches it, while identical runs give a zero-width delta but not
    a zero standard error of either score."""
    rng = random.Random(11)
    dense = [float(rng.random() < 0.75) for _ in range(400)]
    compressed = [float(rng.random() < 0.5) for _ in range(400)]
    interval = paired_bootstrap(_outcomes(dense), _outcomes(compressed), _mean_score, replicates=2000, seed=2)
    assert interval is not None and interval.se_dense is not None and interval.se_compressed is not None
    p_dense, p_compressed = sum(dense) / 400, sum(compressed) / 400
    assert interval.se_dense == pytest.approx(100 * (p_dense * (1 - p_dense) / 400) ** 0.5, rel=0.1)
    assert interval.se_compressed == pytest.approx(100 * (p_compressed * (1 - p_compressed) / 400) ** 0.5, rel=0.1)
    same = paired_bootstrap(_outcomes(dense), _outcomes(dense), _mean_score, replicates=300, seed=2)
    assert same is not None and same.se == 0.0 and same.se_dense == same.se_compressed > 1.0
