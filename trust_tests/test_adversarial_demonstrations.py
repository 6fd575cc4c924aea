"""Adversarial demonstrations: is the compressed model as hard to mislead with counterfactual,
spurious-correlation and backdoored few-shot demos as the dense model?"""

from comptrust_plugin.dimensions import adversarial_demonstrations


def test_adversarial_demonstrations(trust_check):
    trust_check(adversarial_demonstrations)
