"""comptrust's trust suite: one module per trust dimension, each gating compressed vs dense."""
