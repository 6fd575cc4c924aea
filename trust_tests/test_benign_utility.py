"""Benign utility: does the compressed model answer multiple-choice questions across subjects as
well as the dense model? (Utility alone does not reveal trust loss; see the other modules.)"""

from comptrust_plugin.dimensions import benign_utility


def test_benign_utility(trust_check):
    trust_check(benign_utility)
