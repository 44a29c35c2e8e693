"""Errors a user can fix. The CLI prints them as one line and exits 2; anything else is a bug."""


class TrtbenchError(Exception):
    """A problem with the user's input or environment, described in one line."""


class SpecError(TrtbenchError):
    """The sweep spec (or a value in it) is wrong."""


class StoreError(TrtbenchError):
    """The run directory cannot be used (locked, not a trtbench run, unreadable)."""
