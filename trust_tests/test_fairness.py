"""Fairness: does the compressed model's income prediction depend on sex no more than the dense
model's (demographic parity and equalized odds over counterfactual twins)?"""

from comptrust_plugin.dimensions import fairness


def test_fairness(trust_check):
    trust_check(fairness)
