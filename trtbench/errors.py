"""Errors a user can fix. The CLI prints them as one line and exits 2; anything else is a bug."""


class TrtbenchError(Exception):
    """A problem with the user's input or environment, described in one line."""


class SpecError(TrtbenchError):
    """The sweep spec (or a value in it) is wrong."""


class Unsupported(SpecError):
    """A value the model or GPU cannot run (MXFP4 on a dense model, FP8 on Ampere, a TP that does not divide the
    heads): refused before anything runs, measured or simulated, where the catalog knows both."""


class StoreError(TrtbenchError):
    """The run directory cannot be used (locked, not a trtbench run, unreadable)."""


class DiskError(StoreError):
    """A write the disk refused (full, read-only, over quota, an I/O error): the path, and what is still intact."""

    def __init__(self, message: str, kept: str | None = None) -> None:
        super().__init__(f"{message}; {kept or 'what trtbench wrote before is intact (every write is atomic)'}")
        self.message, self.kept = message, kept


class RunBusy(StoreError):
    """Another process (a sweep) holds the run directory's lock."""


class RunLost(Exception):
    """A point's run ended without a verdict on the point: its benchmark's keeper was killed from outside (the
    benchmark went with it, as designed). Nothing is recorded, so a resume runs the point again; the sweep goes
    on with the others. The message says why, for the sweep's summary."""


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP, raised wherever the program is, so every cleanup runs (the benchmark's
    keeper is stopped, nothing half-done is recorded) and the exit status says which signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal number, as a shell reports a process ended by that signal."""
    return 128 + (interrupt.signum if isinstance(interrupt, Interrupted) else 2)
