"""The RLlib callback that reports every finished episode to the training process, where rlkit's events are emitted.

It runs inside RLlib's env runners (Ray actors): it logs each episode's return and length as an item series, which
RLlib gathers into the training iteration's results (``env_runners/rlkit_episodes``). Imported only to train with
RLlib (it needs ``ray[rllib]``).
"""

from __future__ import annotations

from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

EPISODES_KEY = "rlkit_episodes"
"""Where the episodes land in an iteration's ``env_runners`` results: ``(return, length, {agent: return})`` each."""


class EpisodeReport(RLlibCallback):
    """On every finished episode: its whole return and length (all its chunks), and each agent's return."""

    def on_episode_end(self, *, episode: Any, prev_episode_chunks: list[Any] | None = None,
                       metrics_logger: Any = None, **kwargs: Any) -> None:
        """Log the episode as one item of the ``rlkit_episodes`` series."""
        chunks = [*(prev_episode_chunks or []), episode]
        ret = float(sum(c.get_return() for c in chunks))
        length = int(sum(c.env_steps() for c in chunks))
        agents: dict[str, float] = {}
        for chunk in chunks:  # multi-agent episodes: each agent's part
            for agent, part in getattr(chunk, "agent_episodes", {}).items():
                agents[str(agent)] = agents.get(str(agent), 0.0) + float(part.get_return())
        metrics_logger.log_value(EPISODES_KEY, (ret, length, agents), reduce="item_series")
