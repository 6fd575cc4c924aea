"""Repository-level pytest configuration only; the product lives in comptrust_plugin."""
