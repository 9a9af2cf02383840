"""rlkit's Hydra plugin, where Hydra looks for it: the ``hydra_plugins`` namespace package.

Hydra instantiates launchers and sweepers only from classes defined under ``hydra_plugins``; the code lives in
``rlkit.launchers``, and this subclass gives it a name Hydra accepts. Importing this module stores its config,
``hydra/launcher=ray``. (``hydra_plugins`` itself has no ``__init__.py``: other distributions add their
plugins to it too.)
"""

from hydra.core.config_store import ConfigStore

# Modules, not classes: Hydra's scan registers every Plugin class it finds among a module's members.
import rlkit.launchers.ray_launcher as _ray_launcher


class RayLauncher(_ray_launcher.RayLauncher):
    """``hydra/launcher=ray``: each job a Ray task (rlkit.launchers.ray_launcher)."""


ConfigStore.instance().store(group="hydra/launcher", name="ray", node=_ray_launcher.RayLauncherConf,
                             provider="rlkit")
