"""Out-of-distribution robustness: does the compressed model still decline facts it cannot know,
and still read sentiment written in unfamiliar styles, as well as the dense model?"""

from comptrust_plugin.dimensions import ood_robustness


def test_ood_robustness(trust_check):
    trust_check(ood_robustness)
