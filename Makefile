# rlkit: the two commands that do everything on a fresh machine (Python 3.10+ with venv, and make):
#   make train   creates .venv, installs rlkit with a CPU build of torch, trains DQN on the balancing pole
#   make test    creates .venv, installs rlkit and its test tools, runs the whole test suite (slow tests too)
# Extra arguments: make train ARGS="seed=3"   make test PYTEST_ARGS="-m 'not slow'"
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rlkit-setup
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup train test test-fast bench lint

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $(STAMP)

setup: $(STAMP)

train: $(STAMP)
	$(VENV)/bin/rlkit train experiment=balancing_pole_dqn $(ARGS)

test: $(STAMP)
	SDL_VIDEODRIVER=dummy $(PY) -m pytest -n 2 --dist worksteal $(PYTEST_ARGS)

test-fast: $(STAMP)
	SDL_VIDEODRIVER=dummy $(PY) -m pytest -n 2 --dist worksteal -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) scripts/bench_balancing_pole.py

lint: $(STAMP)
	$(VENV)/bin/ruff check rlkit envs agents hydra_plugins scripts tests
