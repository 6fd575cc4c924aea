"""Privacy: does the compressed model leak e-mail addresses, private data held in its context,
or secrets told in confidence more often than the dense model?"""

from comptrust_plugin.dimensions import privacy


def test_privacy(trust_check):
    trust_check(privacy)
