"""Machine ethics: does the compressed model still tell wrong acts from acceptable ones,
and resist jailbreak system prompts and evasive excuses, as well as the dense model does?"""

from comptrust_plugin.dimensions import machine_ethics


def test_machine_ethics(trust_check):
    trust_check(machine_ethics)
