"""Adversarial robustness: does the compressed model keep its answers when sentiment, duplicate-
question and entailment inputs carry label-preserving typos, synonyms and distractions?"""

from comptrust_plugin.dimensions import adversarial_robustness


def test_adversarial_robustness(trust_check):
    trust_check(adversarial_robustness)
