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


class EnvError(RlkitError, ValueError):
    """An environment's output rlkit cannot learn from, or an action that does not fit its action space.

    Outputs: NaN or infinite observations or rewards, a reward that is not a number.
    """


class TrainingDiverged(RlkitError):
    """A loss or gradient became NaN or infinite; the update that would have written it was not applied.

    ``weights_finite`` says whether the weights (from the last applied update) are still finite, i.e. worth
    saving as the run's last good state.
    """

    def __init__(self, message: str, weights_finite: bool = True) -> None:
        super().__init__(message)
        self.weights_finite = weights_finite


class DiskFullError(RlkitError, OSError):
    """Writing a run's files failed because the disk (or the user's quota) is full."""
