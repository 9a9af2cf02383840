"""rlkit's Hydra plugins, in the ``hydra_plugins`` namespace where Hydra instantiates launchers and sweepers from."""

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
    """Add the classes to Hydra's registry (idempotent), whose scan misses them in an editable install."""
    for plugin in (RayLauncher, OptunaSweeper):
        Plugins.instance().register(plugin)
