"""Where Ray runs: the address a run or sweep connects to, checked before Ray is imported (Ray itself is not).

rlkit's three users of Ray (the sweep launcher, ``env.vectorization=ray`` and ``agent=rllib``) connect the same way:
``RAY_ADDRESS`` (or the launcher's own setting) names a cluster, probed here first because ``ray.init`` retries an
unreachable head for minutes; without one, a new local instance that listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import socket

from rlkit.errors import ConfigError

ADDRESS_ENV = "RAY_ADDRESS"
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": a local instance's services listen on 127.0.0.1 only
LOOPBACK = "127.0.0.1"
CONNECT_TIMEOUT_S = 5.0  # to call a cluster unreachable


def local_on_loopback(address: str) -> None:
    """Before Ray is imported: a new local instance (``address`` local) serves this machine only."""
    if address == "local":
        os.environ.setdefault(LOOPBACK_ENV, "0")


def check_reachable(address: str, source: str = ADDRESS_ENV, error: type[Exception] = ConfigError) -> None:
    """Fail fast, naming the address and where it was set (``source``), when a cluster's head takes no connection.

    ``address`` is ``host:port`` or ``ray://host:port``; ``error`` is the exception raised (one line for the user).
    """
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise error(f"{source}={address!r} is not a Ray address: use host:port (the head's GCS port, 6379 unless "
                    "`ray start --port` chose another), ray://host:port, auto or local")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise error(f"no Ray cluster answers at {address} ({source}): {e.strerror or type(e).__name__}. Start one "
                    f"there with `ray start --head --port={port}`, or unset {ADDRESS_ENV} to run on a new local "
                    "instance") from None
