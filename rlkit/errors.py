"""Errors that mean the user asked for something wrong; the CLI prints them without a traceback."""

from hydra.errors import CompactHydraException

DEBUG_ENV = "RLKIT_DEBUG"
"""Environment variable that turns rlkit's one-paragraph errors back into tracebacks."""


def error_text(message: str) -> str:
    """How the CLI shows a user's mistake: one paragraph, then how to get the traceback."""
    return f"rlkit: error: {message}\n(set {DEBUG_ENV}=1 for the traceback)"


class RlkitError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""


class ConfigError(RlkitError, ValueError):
    """A config value is invalid, or an environment and an agent do not fit together."""


class RunDirError(RlkitError, FileNotFoundError):
    """A run directory or checkpoint is missing, incomplete or corrupt."""


class _ShownByHydra(RlkitError, CompactHydraException):
    """An error raised inside Hydra's multirun, shown without a traceback.

    Hydra prints a ``CompactHydraException`` as ``str()`` alone, then says how to see the traceback
    (``HYDRA_FULL_ERROR=1``, which ``RLKIT_DEBUG=1`` sets too). ``args[0]`` is the message.
    """

    def __str__(self) -> str:
        return f"rlkit: error: {self.args[0] if self.args else ''}"


class SweepError(_ShownByHydra):
    """A multirun cannot go on: a launcher or sweeper setting is wrong, or every trial failed."""


class JobFailed(_ShownByHydra):
    """A multirun job stopped on a user error; Hydra reports the first such job after its batch."""
