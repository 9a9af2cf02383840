"""rlkit: train, load, evaluate and export reinforcement-learning agents (docs/api.md).

``rlkit.train``, ``rlkit.load`` and ``rlkit.export`` (and the ``Run`` and ``Policy`` they return) are imported
from :mod:`rlkit.api` on first use, so ``import rlkit`` and the ``rlkit`` command stay light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["Policy", "Run", "__version__", "export", "load", "train"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("rlkit")
    if name in __all__:
        value = getattr(import_module("rlkit.api"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rlkit' has no attribute {name!r}")
