"""rlkit: train, load, evaluate and export reinforcement-learning agents (docs/api.md).

``rlkit.train``, ``rlkit.load`` and ``rlkit.export`` are imported on first use, so ``import rlkit`` (and the
``rlkit`` command) stays light. ``rlkit.train`` and ``rlkit.export`` are also the modules of those names
(``rlkit.train.train(cfg, run_dir)``, the trainer without config composition): calling the module calls the
function of :mod:`rlkit.api`.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import Any

__all__ = ["Policy", "Run", "__version__", "export", "load", "train"]
_CALLABLE = ("train", "export")  # submodules that, called, run rlkit.api's function of their name


class _CallableModule(types.ModuleType):
    """``rlkit.train(...)`` is ``rlkit.api.train(...)``, while ``rlkit.train.train`` stays the module's."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(import_module("rlkit.api"), self.__name__.rpartition(".")[2])(*args, **kwargs)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CALLABLE and type(value) is types.ModuleType:  # the import system binding the submodule
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("rlkit")
    if name in _CALLABLE:
        return import_module(f"rlkit.{name}")  # bound here, callable, by _Package.__setattr__
    if name in __all__:
        return getattr(import_module("rlkit.api"), name)
    raise AttributeError(f"module 'rlkit' has no attribute {name!r}")
