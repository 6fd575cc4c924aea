"""The one exception type users see: a one-line, actionable message (no deep traceback)."""


class TrustError(Exception):
    """A problem the user can fix (bad option, missing model, corrupt cache, bad data row).

    The plugin turns it into a one-line failure or usage error; never raised for bugs.
    """
