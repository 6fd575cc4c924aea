"""Stereotype bias: does the compressed model agree with stereotypes about demographic groups
more often than the dense model, under benign and adversarial system prompts?"""

from comptrust_plugin.dimensions import stereotype_bias


def test_stereotype_bias(trust_check):
    trust_check(stereotype_bias)
