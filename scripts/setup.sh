#!/usr/bin/env bash
# Creates a virtual environment and installs rlkit (editable, with test tools and the Ray, RLlib and export extras,
# which the tests cover) at the pinned versions.
# Usage: bash scripts/setup.sh [VENV_DIR]   (default .venv)
#
# torch goes first and is always the CPU build (torch==<version>+cpu from constraints.txt): found through
# pip's configured indexes/find-links if they carry it, else from PyTorch's CPU-only index. Installing it
# first means no later requirement can pull the multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --quiet --constraint constraints.txt)
torch_pin=$(grep -E '^torch==' constraints.txt)

if ! "$venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__ == '${torch_pin#torch==}' else 1)" 2>/dev/null; then
  if ! "${pip[@]}" "$torch_pin" 2>/dev/null; then
    echo "setup: $torch_pin not on the configured indexes; using PyTorch's CPU-only index" >&2
    "${pip[@]}" --extra-index-url https://download.pytorch.org/whl/cpu "$torch_pin"
  fi
fi
"${pip[@]}" -e ".[test,ray,rllib,export]"
"$venv/bin/python" -c "import torch; assert not torch.version.cuda, 'a CUDA build of torch was installed'; print('setup: rlkit installed with torch', torch.__version__, '(CPU)')"
