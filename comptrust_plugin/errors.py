"""The one exception type users see: a one-line, actionable message (no deep traceback)."""


class TrustError(Exception):
    """A problem the user can fix (bad option, missing model, corrupt cache, bad data row).

    The plugin turns it into a one-line failure or usage error; never raised for bugs.
    """


class CorruptWeights(TrustError):
    """A weights file that exists but cannot be read (truncated or overwritten safetensors)."""

    def __init__(self, folder: object, message: str) -> None:
        super().__init__(message)
        self.folder = folder


def one_line(text: str) -> str:
    """User input as a message shows it: control characters escaped, so the message stays one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))
