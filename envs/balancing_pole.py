"""The balancing pole: a pole hinged on a cart that moves along a frictionless track."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlkit.envs.rendering import PygameCanvas


class BalancingPoleEnv(gym.Env[np.ndarray, Any]):
    """Balance a pole upright by pushing the cart it is hinged on.

    ## Description
    The classic cart-pole of Barto, Sutton and Anderson (1983): an un-actuated pole stands on a cart that
    moves along a frictionless one-dimensional track. The pole starts upright; the goal is to keep it
    upright by pushing the cart left or right.

    ## Action Space
    By default `Discrete(2)`: 0 pushes the cart to the left, 1 to the right, each with `force_mag` newtons.
    With `continuous=True` the action is a `Box(-1, 1, (1,), float32)` and the force is
    `action * force_mag`. An action outside the space raises `ValueError`.

    ## Observation Space
    A `Box` of shape `(4,)`, float32:

    | Num | Observation           | Min                   | Max                 |
    |-----|-----------------------|-----------------------|---------------------|
    | 0   | Cart position (m)     | -2 * x_threshold      | 2 * x_threshold     |
    | 1   | Cart velocity (m/s)   | -inf                  | inf                 |
    | 2   | Pole angle (rad)      | -2 * theta_threshold  | 2 * theta_threshold |
    | 3   | Pole angular velocity | -inf                  | inf                 |

    The bounds are twice the termination limits, so every observation of a live episode lies inside.

    ## Rewards
    +1 for every step taken, the terminating step included. With the default 500-step limit the
    maximum return is 500 and the task counts as solved at 475.

    ## Starting State
    Every observation is drawn uniformly from (-0.05, 0.05).

    ## Episode End
    Termination: |cart position| > `x_threshold` (2.4 m) or |pole angle| > `theta_threshold_degrees`
    (12 degrees). Truncation: at `max_episode_steps` (500), applied by Gymnasium's `TimeLimit` wrapper
    from the registration, never mixed with termination.

    ## Arguments
    ```python
    import gymnasium as gym
    import rlkit.envs  # registers the rlkit/ namespace
    env = gym.make("rlkit/BalancingPole-v1", render_mode="rgb_array", gravity=9.8, continuous=False)
    ```
    Every physical constant below is a keyword argument (and a key of `configs/env/balancing_pole.yaml`).
    `render_mode` is `"human"` (a pygame window at `render_fps`) or `"rgb_array"` (frames of shape
    (400, 600, 3), uint8).

    ## Dynamics
    Semi-implicit equations of Florian (2007) for a frictionless cart-pole, integrated with explicit
    Euler steps of `tau` seconds: positions advance with the old velocities, then velocities with the
    accelerations computed from the old state.

    ## Version History
    * v1: initial version; physics equal to Gymnasium's CartPole-v1.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 50}

    def __init__(
        self,
        render_mode: str | None = None,
        gravity: float = 9.8,  # m/s^2
        masscart: float = 1.0,  # kg
        masspole: float = 0.1,  # kg
        length: float = 0.5,  # m, half the pole's length
        force_mag: float = 10.0,  # N
        tau: float = 0.02,  # s between state updates
        theta_threshold_degrees: float = 12.0,  # degrees from upright that end the episode
        x_threshold: float = 2.4,  # m from the centre that ends the episode
        continuous: bool = False,
    ) -> None:
        """Create the environment; see the class docstring for the arguments."""
        for name, value in (("masscart", masscart), ("masspole", masspole), ("length", length),
                            ("force_mag", force_mag), ("tau", tau),
                            ("theta_threshold_degrees", theta_threshold_degrees),
                            ("x_threshold", x_threshold)):
            if not value > 0:
                raise ValueError(f"BalancingPoleEnv: {name} must be > 0, got {value!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}"
            )
        self.gravity = float(gravity)
        self.masscart = float(masscart)
        self.masspole = float(masspole)
        self.length = float(length)
        self.force_mag = float(force_mag)
        self.tau = float(tau)
        self.x_threshold = float(x_threshold)
        self.theta_threshold_radians = math.radians(theta_threshold_degrees)
        self.continuous = bool(continuous)
        self.render_mode = render_mode

        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length

        high = np.array(
            [2 * self.x_threshold, np.inf, 2 * self.theta_threshold_radians, np.inf], dtype=np.float32
        )
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.action_space: spaces.Space[Any]
        if self.continuous:
            self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        else:
            self.action_space = spaces.Discrete(2)

        self._state = (0.0, 0.0, 0.0, 0.0)
        self._needs_reset = True
        self._canvas: PygameCanvas | None = None

    # ------------------------------------------------------------------ dynamics
    def _force(self, action: Any) -> float:
        """Map an action to the horizontal force on the cart, refusing actions outside the space."""
        if self.continuous:
            a = np.asarray(action, dtype=np.float64).reshape(-1)
            if a.shape != (1,) or not np.isfinite(a[0]) or not -1.0 <= a[0] <= 1.0:
                raise ValueError(
                    f"action {action!r} is outside the action space {self.action_space}: "
                    "expected one finite number in [-1, 1]"
                )
            return float(a[0]) * self.force_mag
        # Fast path for the common types; anything else goes through the space's own check.
        if (type(action) is int or isinstance(action, np.integer)) and (action == 0 or action == 1):
            return self.force_mag if action == 1 else -self.force_mag
        if isinstance(action, np.ndarray) and action.shape == () and self.action_space.contains(action):
            return self.force_mag if int(action) == 1 else -self.force_mag
        raise ValueError(
            f"action {action!r} is outside the action space {self.action_space}: expected the integer "
            "0 (push left) or 1 (push right)"
        )

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance the physics by `tau` seconds under the chosen push."""
        if self._needs_reset:
            raise RuntimeError("BalancingPoleEnv.step() called before reset() or after the episode ended")
        force = self._force(action)
        x, x_dot, theta, theta_dot = self._state
        costheta = math.cos(theta)
        sintheta = math.sin(theta)

        # Florian (2007), frictionless: the pole's angular acceleration first, then the cart's.
        temp = (force + self.polemass_length * theta_dot * theta_dot * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta * costheta / self.total_mass)
        )
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass

        # Explicit Euler: positions move with the old velocities.
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        self._state = (x, x_dot, theta, theta_dot)

        terminated = (
            x < -self.x_threshold
            or x > self.x_threshold
            or theta < -self.theta_threshold_radians
            or theta > self.theta_threshold_radians
        )
        # Episodes that end are over; a stepped-past-termination env is a caller bug, refused above.
        self._needs_reset = terminated

        if self.render_mode == "human":
            self.render()
        return np.array(self._state, dtype=np.float32), 1.0, terminated, False, {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode with every state variable uniform in (-0.05, 0.05)."""
        super().reset(seed=seed)
        low, high = -0.05, 0.05
        if options is not None:
            low, high = options.get("low", low), options.get("high", high)
        self._state = tuple(float(v) for v in self.np_random.uniform(low, high, size=4))
        self._needs_reset = False
        if self.render_mode == "human":
            self.render()
        return np.array(self._state, dtype=np.float32), {}

    # ------------------------------------------------------------------ rendering
    def render(self) -> np.ndarray | None:
        """Draw the track, cart and pole; a frame for `rgb_array`, the window for `human`."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        if self._canvas is None:
            self._canvas = PygameCanvas(600, 400, self.render_mode, self.metadata["render_fps"],
                                        caption="rlkit: balancing pole")
        canvas = self._canvas
        canvas.begin()

        world_width = self.x_threshold * 2
        scale = canvas.width / world_width
        pole_width, pole_len = 10.0, scale * (2 * self.length)
        cart_width, cart_height = 50.0, 30.0
        track_y = 100

        x, _, theta, _ = self._state
        cart_x = x * scale + canvas.width / 2.0
        canvas.hline(0, canvas.width, track_y, (0, 0, 0))
        # Limits of the track, where the episode ends.
        for edge in (-self.x_threshold, self.x_threshold):
            ex = edge * scale + canvas.width / 2.0
            canvas.vline(ex, track_y - 10, track_y + 10, (200, 0, 0))

        left, right = -cart_width / 2, cart_width / 2
        top, bottom = cart_height / 2, -cart_height / 2
        axle_offset = cart_height / 4.0
        cart = [(left, bottom), (left, top), (right, top), (right, bottom)]
        canvas.polygon([(cx + cart_x, cy + track_y) for cx, cy in cart], (0, 0, 0))

        left, right = -pole_width / 2, pole_width / 2
        top, bottom = pole_len - pole_width / 2, -pole_width / 2
        pole = []
        for px, py in [(left, bottom), (left, top), (right, top), (right, bottom)]:
            # Rotate by -theta: positive angles lean the pole to the right.
            rx = px * math.cos(-theta) - py * math.sin(-theta)
            ry = px * math.sin(-theta) + py * math.cos(-theta)
            pole.append((rx + cart_x, ry + track_y + axle_offset))
        canvas.polygon(pole, (202, 152, 101))
        canvas.circle(cart_x, track_y + axle_offset, pole_width / 2, (129, 132, 203))
        return canvas.finish()

    @property
    def window_closed(self) -> bool:
        """True once a user has closed the human-mode window (evaluation then stops)."""
        return self._canvas is not None and self._canvas.closed

    def close(self) -> None:
        """Close the pygame window, if one is open."""
        if self._canvas is not None:
            self._canvas.close()
            self._canvas = None
