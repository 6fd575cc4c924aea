"""Trust dimensions: pure functions from probe items and model outputs to scores.

No module here imports torch or pytest (a test enforces it): they take strings and numbers,
so they run in milliseconds and can re-score outputs produced anywhere.
"""
