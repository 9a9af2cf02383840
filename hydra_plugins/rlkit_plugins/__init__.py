"""rlkit's Hydra plugins where Hydra looks for them, the ``hydra_plugins`` namespace package (no ``__init__.py``).

Hydra instantiates launchers and sweepers only from classes under ``hydra_plugins``: these subclasses name the
code of ``rlkit.ray_launcher`` and ``rlkit.optuna_sweeper``. Importing this module stores their configs,
``hydra/launcher=ray`` and ``hydra/sweeper=optuna``.
"""

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins

# Modules, not classes: Hydra's scan registers every Plugin class it finds among a module's members.
import rlkit.optuna_sweeper as _optuna_sweeper
import rlkit.ray_launcher as _ray_launcher


class RayLauncher(_ray_launcher.RayLauncher):
    """``hydra/launcher=ray``: each job a Ray task (rlkit.ray_launcher)."""


class OptunaSweeper(_optuna_sweeper.OptunaSweeper):
    """``hydra/sweeper=optuna``: an Optuna search, several seeds per trial (rlkit.optuna_sweeper)."""


ConfigStore.instance().store(group="hydra/launcher", name="ray", node=_ray_launcher.RayLauncherConf,
                             provider="rlkit")
ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=_optuna_sweeper.OptunaSweeperConf,
                             provider="rlkit")


def register() -> None:
    """Add the classes to Hydra's registry, whose scan misses them in an editable install.

    setuptools' editable import hook makes this module importable but not listable. ``Plugins.register`` is
    public and idempotent.
    """
    for plugin in (RayLauncher, OptunaSweeper):
        Plugins.instance().register(plugin)
