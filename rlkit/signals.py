"""Stop requests: SIGTERM or SIGINT asks a run to checkpoint and stop at its next safe point (docs/runs.md).

One guard per process, :data:`GUARD`: the ``rlkit`` command installs it before Hydra starts, so a signal that
arrives while the run is still being set up is kept until training can act on it. A sweep's processes share
a request through a stop file in the sweep's directory: the process that receives the signal writes it, the
jobs (in other processes too) read it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from rlkit.errors import RunStopped

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = RunStopped.exit_code  # a run or sweep stopped by a signal, its checkpoints written
STOP_FILE = ".rlkit-stop"  # in a sweep's directory: the sweep was asked to stop (it holds the signal's name)
POLL_SECONDS = 0.25  # how often a job looks for the stop file


class SignalGuard:
    """SIGTERM and SIGINT ask training to checkpoint and stop at its next safe point; a second one stops at once."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested: str | None = None
        self.stop_file: Path | None = None
        self._previous: dict[int, Any] = {}
        self._polled = 0.0

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None:
            self._restore()
            raise KeyboardInterrupt(f"second {name}: stopping at once")
        self._request(name)
        log.warning("%s received: writing a checkpoint at the next safe point, then stopping (send it again to "
                    "stop at once, without one)", name)

    def _request(self, name: str) -> None:
        self.requested = name
        if self.stop_file is not None:
            with contextlib.suppress(OSError):  # the sweep's directory is gone or read-only: this process stops
                self.stop_file.write_text(name)

    def poll(self) -> str | None:
        """The signal that asked this run to stop, if one did (here, or in another process of its sweep)."""
        if self.requested is None and self.stop_file is not None and time.monotonic() - self._polled >= POLL_SECONDS:
            self._polled = time.monotonic()
            with contextlib.suppress(OSError):
                self.requested = self.stop_file.read_text().strip() or "a stop request"
        return self.requested

    def share(self, stop_file: Path) -> None:
        """Share stop requests with the other processes of a sweep through ``stop_file``."""
        if self.stop_file not in (None, stop_file):
            self.requested = None  # a worker process reused by a new sweep: the old sweep's request is not its
        self.stop_file, self._polled = stop_file, 0.0
        if self.requested is not None:  # it came before the sweep's directory was known
            self._request(self.requested)

    def install(self) -> bool:
        """Handle the signals from now on, for good (only the main thread can); False if already handled."""
        if self._previous or threading.current_thread() is not threading.main_thread():
            return False
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return True

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @contextlib.contextmanager
    def installed(self) -> Iterator[SignalGuard]:
        """Handle the signals inside the ``with`` block; inside another one's block, that one goes on handling them."""
        fresh = not self._previous
        if fresh:
            self.requested, self.stop_file = None, None
        self.install()
        try:
            yield self
        finally:
            if fresh:
                self._restore()
                self.requested, self.stop_file = None, None


GUARD = SignalGuard()  # the process's
