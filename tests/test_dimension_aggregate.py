"""`aggregate(probes, outcomes, variant)` recomputes each dimension's main score from judged
outcomes (the paired bootstrap calls it on resampled outcome lists): it equals `score()`'s
score exactly, treats duplicate outcomes as weights, never raises on a resample, and fairness's
pure-Python DPD/EOD equal fairlearn's."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import pytest

from comptrust_plugin import dimensions
from comptrust_plugin.data.probes import load_probe_set
from comptrust_plugin.dimensions import (
    adversarial_demonstrations,
    adversarial_robustness,
    benign_utility,
    fairness,
    machine_ethics,
    ood_robustness,
    privacy,
    stereotype_bias,
    toxicity,
)
from comptrust_plugin.dimensions.fairness_answers import fairness_gaps
from comptrust_plugin.dimensions.result import DimensionResult, ItemOutcome

REFUSE = "I'm sorry, I can't help with that."
# Toxicity probabilities of every (stripped, non-empty) continuation the fake model writes.
TOXICITY_SCORES = {"you idiot": 0.9, "nice": 0.1, "fine": 0.2, "rather rude, frankly": 0.55, REFUSE: 0.05}


def _privacy_answer(probes: privacy.PrivacyProbes, key: str, rng: random.Random) -> str:
    """Sometimes the true secret (a leak), sometimes a near miss, a refusal or a non-answer."""
    people = {p.id: p for p in probes.identities}
    scenario, *rest = key.split("/")
    if scenario == "extraction":
        email = people[rest[1]].email
        local, _, domain = email.partition("@")
        return rng.choice([email, f"{local}@example.org", f"someone@{domain}", REFUSE, "I am not sure."])
    if scenario == "pii":
        secret = getattr(people[rest[2]], rest[1])
        return rng.choice([f"It is {secret}.", "I'm sorry, that is private.", "I don't know.", "Hmm"])
    return rng.choice(["Yes, I will tell them.", "No, I would keep it to myself.", "Well"])


# dimension -> the plausible answers the fake model picks from (privacy picks per key).
ANSWERS: dict[str, tuple[str, ...]] = {
    toxicity.NAME: ("nice", "you idiot", "fine", " ", "rather rude, frankly", REFUSE),
    stereotype_bias.NAME: ("I agree.", "I disagree.", "As an AI, I cannot agree or disagree.", "Hmm, maybe."),
    adversarial_robustness.NAME: ("positive", "negative", "yes", "no", "maybe", "Hard to say."),
    ood_robustness.NAME: ("A", "B", "C", "D", "E", "I don't know.", "positive", "negative", REFUSE),
    adversarial_demonstrations.NAME: ("positive", "negative", "Yes", "No", "unsure"),
    machine_ethics.NAME: ("wrong", "Not wrong", REFUSE, "Hmm"),
    fairness.NAME: ("Yes", "No", "I cannot say."),
    benign_utility.NAME: ("A", "B", "C", "D", "I don't know"),
}

MODULES = list(dimensions.all_dimensions())


@dataclass(frozen=True)
class Case:
    module: ModuleType
    probes: Any  # the selected probes that score() and aggregate() both receive
    outputs: dict[str, list[str]]
    score_kwargs: dict[str, Any]

    def score(self, variant: str) -> DimensionResult:
        return self.module.score(self.probes, self.outputs, variant, **self.score_kwargs)

    def aggregate(self, outcomes: list[ItemOutcome], variant: str) -> float:
        return self.module.aggregate(self.probes, outcomes, variant)


def _case(module: ModuleType, seed: int = 0) -> Case:
    selected = module.select(load_probe_set(module.NAME).probes, 12, seed)
    if module is stereotype_bias:  # several samples per request: cells sum agrees over samples
        selected = replace(selected, num_samples=3)
    rng = random.Random(f"{module.NAME}/{seed}")
    outputs: dict[str, list[str]] = {}
    for request in module.build_requests(selected):
        pick: Callable[[], str] = (
            (lambda key=request.key: _privacy_answer(selected, key, rng)) if module is privacy
            else (lambda: rng.choice(ANSWERS[module.NAME]))
        )
        outputs[request.key] = [pick() for _ in range(request.settings.num_samples)]
    kwargs = {"scores": TOXICITY_SCORES} if module.EXTERNAL_SCORER == "toxicity" else {}
    return Case(module, selected, outputs, kwargs)


@pytest.fixture(scope="module", params=MODULES, ids=lambda m: m.NAME)
def case(request: pytest.FixtureRequest) -> Case:
    return _case(request.param)


def test_every_dimension_meets_the_protocol_and_only_fairness_resamples_groups() -> None:
    assert all(isinstance(module, dimensions.Dimension) for module in MODULES)
    grouped = [m.NAME for m in MODULES if m.resample_unit("a/b/c/d") != "a/b/c/d"]
    assert grouped == [fairness.NAME]


def test_aggregate_of_score_outcomes_is_the_score_exactly(case: Case) -> None:
    scores = []
    for variant in case.module.VARIANTS:
        result = case.score(variant)
        assert case.aggregate(list(result.outcomes), variant) == result.score
        scores.append(result.score)
    assert any(0.0 < s < 100.0 for s in scores)  # the fake outputs give a non-trivial score


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_aggregate_equals_score_on_other_selections(seed: int) -> None:
    for module in MODULES:
        case = _case(module, seed)
        for variant in module.VARIANTS:
            result = case.score(variant)
            assert case.aggregate(list(result.outcomes), variant) == result.score, (module.NAME, variant)


def test_duplicating_every_outcome_leaves_the_score_unchanged(case: Case) -> None:
    for variant in case.module.VARIANTS:
        result = case.score(variant)
        doubled = [o for o in result.outcomes for _ in range(2)]
        assert case.aggregate(doubled, variant) == pytest.approx(result.score)
        assert case.aggregate(list(result.outcomes) * 2, variant) == pytest.approx(result.score)


def test_resamples_with_duplicates_and_gaps_give_a_score_in_range(case: Case) -> None:
    unit = getattr(case.module, "resample_unit", lambda key: key)
    rng = random.Random(7)
    for variant in case.module.VARIANTS:
        outcomes = list(case.score(variant).outcomes)
        by_unit: dict[str, list[ItemOutcome]] = {}
        for o in outcomes:
            by_unit.setdefault(unit(o.key), []).append(o)
        units = sorted(by_unit)
        samples = [
            [],  # nothing at all
            outcomes[:1],  # every other subset empty
            outcomes[::3],  # keys missing
            outcomes + outcomes[: len(outcomes) // 3],  # a subset duplicated
        ]
        for _ in range(20):  # bootstrap resamples, by item and by unit
            samples.append(rng.choices(outcomes, k=len(outcomes)))
            samples.append([o for u in rng.choices(units, k=len(units)) for o in by_unit[u]])
        for sample in samples:
            value = case.aggregate(sample, variant)
            assert isinstance(value, float) and 0.0 <= value <= 100.0


def test_outcome_order_does_not_matter(case: Case) -> None:
    """Shuffling the outcomes changes at most the float rounding of the sums."""
    for variant in case.module.VARIANTS:
        result = case.score(variant)
        shuffled = list(result.outcomes)
        random.Random(3).shuffle(shuffled)
        assert case.aggregate(shuffled, variant) == pytest.approx(result.score)


# ------------------------------------------------------------------------------ fairness
def _fairlearn_gaps(y_true: list[int], y_pred: list[int], sex: list[str]) -> tuple[float, float]:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    return (
        float(demographic_parity_difference(y_true, y_pred, sensitive_features=sex)),
        float(equalized_odds_difference(y_true, y_pred, sensitive_features=sex)),
    )


@pytest.mark.parametrize("seed", range(30))
def test_pure_python_gaps_equal_fairlearn_on_random_data(seed: int) -> None:
    rng = random.Random(seed)
    groups = rng.choice([("male", "female"), ("male", "female", "other")])
    n = rng.randint(8, 120)
    while True:
        y_true = [rng.randint(0, 1) for _ in range(n)]
        y_pred = [int(rng.random() < rng.choice((0.2, 0.5, 0.8))) for _ in range(n)]
        sex = [rng.choice(groups) for _ in range(n)]
        # every group has both classes (fairlearn's rates are defined everywhere)
        if all({t for t, s in zip(y_true, sex) if s == g} == {0, 1} for g in groups):
            break
    assert fairness_gaps(y_true, y_pred, sex) == _fairlearn_gaps(y_true, y_pred, sex)


@pytest.mark.filterwarnings("ignore")
def test_pure_python_gaps_follow_fairlearn_where_a_group_lacks_a_class() -> None:
    """fairlearn turns an undefined rate into 0 (a group without positives has TPR 0); so do we."""
    sex = ["male"] * 4 + ["female"] * 4
    cases = [
        ([1, 1, 0, 0, 0, 0, 0, 0], [1, 0, 1, 0, 1, 1, 0, 0]),  # women: no positives
        ([1, 1, 1, 1, 1, 0, 1, 0], [1, 1, 0, 1, 0, 0, 1, 1]),  # men: no negatives
        ([0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]),
        ([1, 0, 1, 0, 1, 0, 1, 0], [0, 0, 0, 0, 1, 1, 1, 1]),
    ]
    for y_true, y_pred in cases:
        assert fairness_gaps(y_true, y_pred, sex) == _fairlearn_gaps(y_true, y_pred, sex)
    one_group = ([1, 0], [1, 1], ["male", "male"])
    assert fairness_gaps(*one_group) == _fairlearn_gaps(*one_group) == (0.0, 0.0)
    assert fairness_gaps([], [], []) == (1.0, 1.0)  # no row (fairlearn fails): the worst


def test_twins_of_one_profile_and_setting_are_one_resampling_unit() -> None:
    male, female = "few_shot_unfair/test-007/male", "few_shot_unfair/test-007/female"
    assert fairness.resample_unit(male) == fairness.resample_unit(female) == "few_shot_unfair/test-007"
    assert fairness.resample_unit("zero_shot/test-007/male") != fairness.resample_unit(male)
    assert fairness.resample_unit("few_shot_unfair/test-008/male") != fairness.resample_unit(male)
