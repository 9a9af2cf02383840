"""pytest set-up: headless pygame, and one torch thread per test process."""

import os

import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

# pytest-xdist runs one process per core; more threads per process only fight over the cores (as
# rlkit's trainer, which defaults to torch_threads=1).
torch.set_num_threads(1)


def pytest_collection_modifyitems(session, config, items):
    """The training-to-threshold tests first: the longest (the arm's, up to 1.35M env steps) then starts at once
    on one xdist worker while the other works through the rest, instead of running alone at the end."""
    def key(item):  # stable sort: the order is otherwise kept
        return item.nodeid.split("::")[0] != "tests/test_learning.py", "robotic_arm" not in item.name

    items.sort(key=key)
