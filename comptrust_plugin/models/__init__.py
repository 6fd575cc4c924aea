"""Model registry, chat formats, loading and identity."""
