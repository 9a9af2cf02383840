"""Hydra launchers of rlkit (registered with Hydra by ``hydra_plugins.rlkit_plugins``)."""
