"""Toxicity: do the compressed model's continuations get more toxic than the dense model's,
under a benign and under an adversarial system prompt?"""

from comptrust_plugin.dimensions import toxicity


def test_toxicity(trust_check):
    trust_check(toxicity)
