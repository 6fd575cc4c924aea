"""comptrust: does compressing an LLM make it less trustworthy? A pytest plugin that gates it."""

__version__ = "0.1.0"
