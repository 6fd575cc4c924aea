"""Inference: the Backend protocol, the HF backend and the identity-keyed response cache.

Importing this package does not import torch: `engine.requests` is used by the pure
dimension modules, the backends load torch lazily.
"""
