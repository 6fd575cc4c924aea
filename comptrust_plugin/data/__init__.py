"""Probe-set loading: shipped fixtures, validated row by row against JSON schemas."""
