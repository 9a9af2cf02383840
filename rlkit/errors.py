"""Errors that mean the user asked for something wrong, and how they are shown: one paragraph, no traceback."""

import contextlib
import errno
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})  # no space left, disk quota exceeded
DEBUG_ENV = "RLKIT_DEBUG"  # set, it turns rlkit's one-paragraph errors back into tracebacks


class RlkitError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""


class ConfigError(RlkitError, ValueError):
    """A config value is invalid, or an environment and an agent do not fit together."""


class RunDirError(RlkitError, FileNotFoundError):
    """A run directory or checkpoint is missing, incomplete or corrupt."""


class EnvError(RlkitError, ValueError):
    """An env's output rlkit cannot learn from (NaN, infinite, not a number), or an action outside its space."""


class TrainingDiverged(RlkitError):
    """A loss or gradient became NaN or infinite; that update was not applied."""

    def __init__(self, message: str, weights_finite: bool = True) -> None:
        super().__init__(message)
        self.weights_finite = weights_finite  # whether the last applied update's weights are finite (worth saving)


class RunStopped(RlkitError):
    """A deliberate stop (a signal), not a mistake: shown as a plain line, exit code :attr:`exit_code`."""

    exit_code = 75  # EX_TEMPFAIL: try again


class EnvWorkerDied(RunStopped):
    """The process or Ray actor holding some of the env's copies died mid-run (killed, crashed, its node lost)."""


class DiskFullError(RlkitError, OSError):
    """Writing a run's files failed because the disk (or the user's quota) is full."""


@contextlib.contextmanager
def disk_full_errors(writing: Path, checkpoints: Path | None = None) -> Iterator[None]:
    """Turn a full disk (or quota) inside the block into a :class:`DiskFullError` that names what survives.

    ``writing`` is named when the error names no file; the intact checkpoints in ``checkpoints`` are listed.
    """
    try:
        yield
    except OSError as e:
        if e.errno not in DISK_FULL:  # a DiskFullError too: it has no errno
            raise
        target = Path(e.filename) if e.filename else writing
        if checkpoints is None:
            kept = f"the previous {target.name} is intact" if target.is_file() else "nothing earlier was lost"
        else:
            intact = sorted(checkpoints.glob("*.safetensors")) if checkpoints.is_dir() else []
            kept = (f"the previous checkpoint{'s' if len(intact) > 1 else ''} "
                    f"{', '.join(str(p) for p in intact)} {'are' if len(intact) > 1 else 'is'} intact"
                    if intact else "no checkpoint had been written yet")
        raise DiskFullError(f"disk full while writing {target} ({e.strerror or e}); {kept}. "
                            "Free some space and run again") from e


@contextlib.contextmanager
def quiet_disk_full_in_threads() -> Iterator[None]:
    """A thread dying of a full disk (TensorBoard's writer) prints no traceback: the main thread's error says it."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not (isinstance(args.exc_value, OSError) and args.exc_value.errno in DISK_FULL):
            previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous


USER_ERRORS = (RlkitError, OmegaConfBaseException)  # MissingMandatoryValue is an OmegaConfBaseException


def user_message(e: BaseException) -> str:
    """The one line that tells the user what went wrong."""
    if isinstance(e, MissingMandatoryValue):
        key = getattr(e, "full_key", "") or "a key"
        return f"{key} has no value; set it on the command line ({key}=...)"
    return str(e.args[0] if isinstance(e, RlkitError) and e.args else e).strip()


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print a user's mistake as one paragraph and exit 2; ``RLKIT_DEBUG=1`` shows the traceback."""
    try:
        yield
    except RunStopped as e:
        print(f"rlkit: {user_message(e)}", file=sys.stderr)
        sys.exit(e.exit_code)
    except USER_ERRORS as e:
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"rlkit: error: {user_message(e)}\n(set {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 2))
    except KeyboardInterrupt:
        print("rlkit: interrupted", file=sys.stderr)
        sys.exit(130)
