"""Benchmark: RLlib PPO (agent=rllib, 2 env runners) on the balancing pole, time to 475, beside REINFORCE.

Both go through rlkit's trainer with the same protocol: a 10-episode deterministic evaluation every 5,000 steps
(the REINFORCE preset's own schedule), stopped at the first that reaches 475. Reported per seed: environment steps
and wall seconds to that evaluation (training only, evaluation excluded; for RLlib this includes starting Ray and
the env runners), and the run's steps per second. Runs go one at a time in one process. The RLlib
configuration is the one tests/agents/test_rllib.py trains (PPO with Adam 3e-4, 2,000-step batches, 10 epochs of
128-step minibatches, a 64-64 tanh network).

Usage::

    python scripts/bench_rllib.py                    # 3 seeds each
    python scripts/bench_rllib.py --seeds 1 --json bench.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import rlkit.trainer
from bench_balancing_pole import bench_solve

RLLIB_PPO = ["agent=rllib", "agent.algo=PPO", "agent.num_env_runners=2", "agent.net_arch=[64,64]",
             "agent.learning_rate=3e-4", "agent.train_batch_size=2000", "+agent.training.num_epochs=10",
             "+agent.training.minibatch_size=128", "total_steps=300000"]
REINFORCE_PRESET = ["experiment=balancing_pole_reinforce"]
PROTOCOL = ["env=balancing_pole", "callbacks.eval.every_steps=5000", "callbacks.eval.episodes=10",
            "callbacks.eval.stop_on_threshold=true", "callbacks.tensorboard=false", "callbacks.progress_bar=false"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    print(f"time to 475 on the balancing pole (eval: 10 deterministic episodes every 5,000 steps), {args.seeds} seeds")
    out: dict[str, Any] = {"versions": rlkit.trainer.package_versions(), "solve": {
        "RLlib PPO, 2 env runners (agent=rllib)": bench_solve("RLlib PPO (2 env runners)", RLLIB_PPO, args.seeds,
                                                              PROTOCOL),
        "REINFORCE (experiment=balancing_pole_reinforce)": bench_solve("balancing_pole_reinforce",
                                                                       REINFORCE_PRESET, args.seeds, PROTOCOL),
    }}
    print(f"\n    {'configuration':<50}{'solved':>8}{'median s':>10}{'median steps':>14}{'steps/s':>10}")
    for name, r in out["solve"].items():
        print(f"    {name:<50}{r['solved']:>8}{r['median_train_seconds']:>10.1f}{r['median_steps']:>14,.0f}"
              f"{r['median_steps_per_second']:>10,.0f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
