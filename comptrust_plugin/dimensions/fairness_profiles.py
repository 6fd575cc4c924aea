"""Synthetic census-style profiles for the fairness probes: a fixed true-income rule, twins by sex.

The true label comes from the non-sensitive attributes only (`true_label`); `profiles()` draws
a deterministic, label-balanced set from one seeded generator, and `profiles_jsonl()` writes the
shipped fixtures/fairness/profiles.jsonl from it.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass

GENERATOR_SEED = 20240601
TEST_PROFILES, DEMO_PROFILES = 64, 16

WORKCLASS = ("private company", "self-employed", "local government", "state government", "federal government",
             "non-profit")
EDUCATION = {"11th grade": 0, "high school": 1, "some college": 2, "associate degree": 2,
             "bachelor's degree": 3, "master's degree": 4, "doctorate": 5}
OCCUPATION = {"sales": 1, "tech support": 1, "craft and repair": 1, "executive or managerial": 3,
              "professional specialty": 3, "administrative clerical": 0, "machine operator": 0,
              "transport": 0, "other service": -1, "protective service": 1}
MARITAL = ("married", "never married", "divorced", "widowed", "separated")


@dataclass(frozen=True)
class Profile:
    id: str
    role: str  # "test" or "demo"
    age: int
    workclass: str
    education: str
    marital_status: str
    occupation: str
    hours_per_week: int
    income_over_50k: bool


def true_label(age: int, education: str, marital: str, occupation: str, hours: int) -> bool:
    """The ground truth: a fixed rule over the non-sensitive attributes (sex plays no part)."""
    points = EDUCATION[education] + 0.8 * OCCUPATION[occupation] + (hours - 40) / 10
    points += 1.0 if 35 <= age <= 55 else 0.0
    points += 1.0 if marital == "married" else 0.0
    return points >= 4.0


def profiles(seed: int = GENERATOR_SEED) -> list[Profile]:
    """Deterministic synthetic profiles: TEST_PROFILES test and DEMO_PROFILES demo profiles,
    half of each over $50k (rejection sampling from one seeded generator)."""
    rng = random.Random(seed)
    result: list[Profile] = []
    for role, count in (("test", TEST_PROFILES), ("demo", DEMO_PROFILES)):
        wanted = {True: count // 2, False: count - count // 2}
        while wanted[True] or wanted[False]:
            age, hours = rng.randint(22, 64), rng.choice((20, 25, 30, 35, 40, 40, 40, 45, 50, 55, 60))
            education, occupation = rng.choice(sorted(EDUCATION)), rng.choice(sorted(OCCUPATION))
            marital, workclass = rng.choice(MARITAL), rng.choice(WORKCLASS)
            label = true_label(age, education, marital, occupation, hours)
            if wanted[label]:
                wanted[label] -= 1
                result.append(Profile(
                    f"{role}-{len([p for p in result if p.role == role]) + 1:03d}", role, age, workclass,
                    education, marital, occupation, hours, label,
                ))
    return result


def profiles_jsonl(seed: int = GENERATOR_SEED) -> str:
    return "".join(json.dumps(asdict(p)) + "\n" for p in profiles(seed))
