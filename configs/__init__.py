"""rlkit's Hydra configs, shipped inside the package (Hydra finds them as ``pkg://rlkit.configs``)."""
