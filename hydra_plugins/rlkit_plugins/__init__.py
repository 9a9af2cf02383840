"""rlkit's Hydra plugins, where Hydra looks for them: the ``hydra_plugins`` namespace package.

Hydra instantiates launchers and sweepers only from classes defined under ``hydra_plugins``; the code lives in
``rlkit.ray_launcher`` and ``rlkit.optuna_sweeper``, and these subclasses give it the names Hydra accepts. Importing
this module stores their configs, ``hydra/launcher=ray`` and ``hydra/sweeper=optuna``. (``hydra_plugins``
itself has no ``__init__.py``: other distributions add their plugins to it too.)
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
    """Add the plugin classes to Hydra's registry, which its scan misses in an editable install.

    Hydra lists the modules of the ``hydra_plugins`` namespace package; setuptools' editable import hook makes
    this module importable but not listable. ``Plugins.register`` is public and idempotent.
    """
    for plugin in (RayLauncher, OptunaSweeper):
        Plugins.instance().register(plugin)
