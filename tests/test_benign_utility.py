"""Benign utility: first-letter parsing, 5-shot prompt layout and accuracy, pinned on
hand-made outputs; the shipped set's shape."""

from __future__ import annotations

import pytest

from comptrust_plugin.data.probes import shipped_probe_set
from comptrust_plugin.dimensions import benign_utility as bu
from comptrust_plugin.dimensions.result import REFUSAL


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("B", "B"), (" c", "C"), ("D. Paris", "D"), ("A) 4", "A"), ("Answer: B", "B"), ("B<|im_end|>", "B"),
        ("As a rule", REFUSAL), ("The answer is B", REFUSAL), ("E", REFUSAL), ("", REFUSAL),
        ("I'm sorry", REFUSAL),
    ],
)
def test_parse_answer(output: str, expected: str) -> None:
    assert bu.parse_answer(output) == expected


def _probes() -> bu.UtilityProbes:
    def q(i: str, split: str, answer: str, subject: str = "geography") -> bu.McQuestion:
        return bu.McQuestion(i, subject, split, f"Question {i}?", ("w", "x", "y", "z"), answer)

    return bu.UtilityProbes((
        *(q(f"d{n}", "dev", "ABCDA"[n]) for n in range(5)), q("t1", "test", "B"), q("t2", "test", "C"),
        q("h-d", "dev", "A", "world_history"), q("h1", "test", "D", "world_history"),
    ))


def test_prompt_is_five_shot_per_subject() -> None:
    requests = bu.build_requests(_probes())
    assert [r.key for r in requests] == ["geography/t1", "geography/t2", "world_history/h1"]
    text = requests[0].messages[-1].content
    assert text.startswith("The following are multiple choice questions (with answers) about geography.")
    assert text.count("Answer: ") == 5 and text.endswith("Question t1?\nA. w\nB. x\nC. y\nD. z\nAnswer:")
    history = requests[2].messages[-1].content
    assert "about world history." in history and history.count("Answer: ") == 1


def test_score() -> None:
    outputs = {"geography/t1": ["B"], "geography/t2": ["The answer is C"], "world_history/h1": ["D"]}
    result = bu.score(_probes(), outputs)
    assert result.score == pytest.approx(200 / 3)
    assert result.subscores == {"geography": 50.0, "world_history": 100.0}
    assert result.refusal_rate == pytest.approx(100 / 3)


def test_shipped_set_and_tiers() -> None:
    probes = shipped_probe_set("benign_utility").probes
    subjects = {q.subject for q in probes.tests}
    assert len(subjects) >= 6 and all(len(probes.dev(s)) == bu.SHOTS for s in subjects)
    smoke = bu.select(probes, "smoke", 0)
    assert len(smoke.tests) == bu.SMOKE_PER_SUBJECT * len(subjects)
    assert len(smoke.questions) - len(smoke.tests) == len(probes.questions) - len(probes.tests)  # demos kept
    assert len(bu.select(probes, 8, 0).tests) == 8 and bu.select(probes, "full", 0) == probes
