"""pytest set-up: headless pygame, and one torch thread per test process."""

import os
import sys

import torch
from absl import logging as absl_logging

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

# pytest-xdist runs one process per core; more threads per process only fight over the cores (as
# rlkit's trainer, which defaults to torch_threads=1).
torch.set_num_threads(1)

# absl's log handler (absl comes with TensorBoard; RLlib imports its logging) writes to the sys.stderr of the moment it
# is imported, here pytest's capture, and closes that stream when Hydra clears the logging set-up in a test's
# in-process `rlkit` command (tests/helpers.py: cli): pytest's own output would be lost. sys.__stderr__ it never closes.
absl_logging.get_absl_handler().python_handler.stream = sys.__stderr__


LONGEST = "test_maddpg_preset_solves_the_two_agent_cartpole_for_at_least_4_of_5_seeds"


def pytest_collection_modifyitems(session, config, items):
    """The longest test first (MADDPG on the two-agent cart-pole), then the other slow ones, then the rest.

    The longest then starts at once on one xdist worker while the other works through the rest, instead of running
    alone at the end. The second item is a fast one: xdist's worksteal hands a worker the test after the one it
    runs before it starts, and never takes that one back, so a slow second test would wait behind the longest.
    """
    def key(item):  # stable sort: the order is otherwise kept
        return item.name != LONGEST, item.get_closest_marker("slow") is None

    items.sort(key=key)
    if items and items[0].name == LONGEST:
        fast = next((i for i, item in enumerate(items) if item.get_closest_marker("slow") is None), None)
        if fast is not None:
            items.insert(1, items.pop(fast))
