"""pytest set-up: headless pygame, and one torch thread per test process."""

import os

import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

# pytest-xdist runs one process per core; more threads per process only fight over the cores (as
# rlkit's trainer, which defaults to torch_threads=1).
torch.set_num_threads(1)
