"""Tests of DecodingTrust interoperability: its data as our probes, its output files re-scored by hand.

Every file written here is in DecodingTrust's *format* but holds only text written for this
test (no row of the benchmark). Expected scores are worked out in the comments, following the
benchmark's own scoring scripts (named in each test).
"""
