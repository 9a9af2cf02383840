"""The robotic arm: a planar two-link arm that brings its fingertip to a target."""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlkit.env_schemas import RoboticArmConfig
from rlkit.envs.balancing_pole import BatchedEnv, env_config
from rlkit.envs.rendering import CanvasOwner
from rlkit.envs.state import Snapshot

STANDARD_GRAVITY = 9.81  # m/s^2, what gravity=True means

# The core below is written once for floats and NumPy arrays alike: each function uses only + - * / % and the
# sin/cos/sqrt/clip it is given, so the single env (math.*) and the batched one (np.*) agree bit for bit.


class _Arm:
    """Constants of the arm (see :class:`RoboticArmEnv`'s Dynamics), folded once for the single and batched env."""

    def __init__(self, cfg: RoboticArmConfig) -> None:
        l1, l2 = (float(v) for v in cfg.link_lengths)  # validated by the schema
        m1, m2 = (float(v) for v in cfg.link_masses)
        g = STANDARD_GRAVITY if cfg.gravity is True else float(cfg.gravity)
        model, reach, inner = cfg.model, l1 + l2, abs(l1 - l2)
        if model == "simple" and g > 0:
            warnings.warn("robotic arm: the simple model has no gravity (nor masses); gravity is ignored",
                          stacklevel=3)
        self.fixed_target: tuple[float, float] | None = None
        if cfg.fixed_target is not None:
            tx, ty = (float(v) for v in cfg.fixed_target)
            if not inner <= math.sqrt(tx * tx + ty * ty) <= reach:
                warnings.warn(f"robotic arm: fixed_target {cfg.fixed_target!r} lies outside the reachable annulus "
                              f"{inner} <= r <= {reach}; the fingertip can never reach it", stacklevel=3)
            self.fixed_target = (tx, ty)
        self.l1, self.l2, self.reach, self.model = l1, l2, reach, model
        self.max_torque, self.damping, self.dt = float(cfg.max_torque), float(cfg.damping), float(cfg.dt)
        self.max_speed, self.tolerance = float(cfg.max_speed), float(cfg.tolerance)
        self.torque_cost, self.frame_skip = float(cfg.torque_cost), int(cfg.frame_skip)
        self.gravity = g if model == "dynamics" else 0.0
        lc1, lc2 = l1 / 2.0, l2 / 2.0
        i1, i2 = m1 * l1 * l1 / 12.0, m2 * l2 * l2 / 12.0
        self.alpha = i1 + i2 + m1 * lc1 * lc1 + m2 * (l1 * l1 + lc2 * lc2)
        self.beta = m2 * l1 * lc2
        self.delta = i2 + m2 * lc2 * lc2
        self.gravity_1 = self.gravity * (m1 * lc1 + m2 * l1)  # N m at cos(q1) = 1
        self.gravity_2 = self.gravity * m2 * lc2  # N m at cos(q1 + q2) = 1
        # Targets uniform in area of the annulus inner <= r < reach: r^2 uniform in [inner^2, reach^2).
        self.r2_min, self.r2_span = inner * inner, reach * reach - inner * inner
        # Bounds of the target coordinates, which a fixed target outside the reach widens.
        self.target_bound = max(reach, *(abs(v) for v in self.fixed_target)) if self.fixed_target else reach
        self.public = {"link_lengths": (l1, l2), "link_masses": (m1, m2), "max_torque": self.max_torque,
                       "damping": self.damping, "gravity": self.gravity, "dt": self.dt,
                       "frame_skip": self.frame_skip, "max_speed": self.max_speed, "tolerance": self.tolerance,
                       "torque_cost": self.torque_cost, "fixed_target": self.fixed_target, "model": model}


Fn = Callable[[Any], Any]


def make_advance(k: _Arm, sin: Fn, cos: Fn, clip: Fn) -> Callable[..., tuple[Any, Any, Any, Any]]:
    """``advance(q1, q2, w1, w2, tau1, tau2)``: one env step, ``frame_skip`` RK4 steps of ``dt`` (see the Dynamics).

    The constants live in the closure, which keeps the single env's float arithmetic free of attribute look-ups.
    """
    alpha, beta, delta, damping = k.alpha, k.beta, k.delta, k.damping
    det_0 = alpha * delta - delta * delta  # det M = det_0 - (beta cos q2)^2 > 0
    gravity_1, gravity_2 = k.gravity_1, k.gravity_2
    h, h_2, h_6 = k.dt, k.dt / 2.0, k.dt / 6.0
    frame_skip, pi, two_pi = k.frame_skip, math.pi, 2.0 * math.pi

    def accel_simple(q1: Any, q2: Any, w1: Any, w2: Any, tau1: Any, tau2: Any) -> tuple[Any, Any]:
        return tau1 - damping * w1, tau2 - damping * w2

    def accel_dynamics(q1: Any, q2: Any, w1: Any, w2: Any, tau1: Any, tau2: Any) -> tuple[Any, Any]:
        # M(q) qdd = tau - C(q, qd) qd - g(q) - damping qd, solved with the 2 x 2 inverse.
        b_cos = beta * cos(q2)
        b_sin = beta * sin(q2)
        m12 = delta + b_cos
        r1 = tau1 + b_sin * (w2 * (2.0 * w1 + w2)) - damping * w1
        r2 = tau2 - b_sin * (w1 * w1) - damping * w2
        if gravity_1:
            g12 = gravity_2 * cos(q1 + q2)
            r1 = r1 - (gravity_1 * cos(q1) + g12)
            r2 = r2 - g12
        inv_det = 1.0 / (det_0 - b_cos * b_cos)
        return (delta * r1 - m12 * r2) * inv_det, ((alpha + 2.0 * b_cos) * r2 - m12 * r1) * inv_det

    accel = accel_dynamics if k.model == "dynamics" else accel_simple

    def advance(q1: Any, q2: Any, w1: Any, w2: Any, tau1: Any, tau2: Any) -> tuple[Any, Any, Any, Any]:
        for _ in range(frame_skip):
            # Classic RK4 on (q, qd): slopes (w, a), (v, b), (u, c), (x, d) at the start, the middle twice, the end.
            a1, a2 = accel(q1, q2, w1, w2, tau1, tau2)
            v1, v2 = w1 + h_2 * a1, w2 + h_2 * a2
            b1, b2 = accel(q1 + h_2 * w1, q2 + h_2 * w2, v1, v2, tau1, tau2)
            u1, u2 = w1 + h_2 * b1, w2 + h_2 * b2
            c1, c2 = accel(q1 + h_2 * v1, q2 + h_2 * v2, u1, u2, tau1, tau2)
            x1, x2 = w1 + h * c1, w2 + h * c2
            d1, d2 = accel(q1 + h * u1, q2 + h * u2, x1, x2, tau1, tau2)
            q1 = q1 + h_6 * (w1 + 2.0 * (v1 + u1) + x1)
            q2 = q2 + h_6 * (w2 + 2.0 * (v2 + u2) + x2)
            w1 = clip(w1 + h_6 * (a1 + 2.0 * (b1 + c1) + d1))
            w2 = clip(w2 + h_6 * (a2 + 2.0 * (b2 + c2) + d2))
        return (q1 + pi) % two_pi - pi, (q2 + pi) % two_pi - pi, w1, w2

    return advance


def fingertip(k: _Arm, c1: Any, s1: Any, c2: Any, s2: Any) -> tuple[Any, Any]:
    """Forward kinematics: the fingertip from the cosines and sines of both joint angles."""
    return k.l1 * c1 + k.l2 * (c1 * c2 - s1 * s2), k.l1 * s1 + k.l2 * (s1 * c2 + c1 * s2)


def observe(k: _Arm, q1: Any, q2: Any, tx: Any, ty: Any, sin: Fn, cos: Fn, sqrt: Fn) -> tuple[Any, ...]:
    """``(cos q1, sin q1, cos q2, sin q2, dx, dy, distance)`` where (dx, dy) is target minus fingertip."""
    c1, s1, c2, s2 = cos(q1), sin(q1), cos(q2), sin(q2)
    x, y = fingertip(k, c1, s1, c2, s2)
    dx, dy = tx - x, ty - y
    return c1, s1, c2, s2, dx, dy, sqrt(dx * dx + dy * dy)


def start(k: _Arm, u0: Any, u1: Any, u2: Any, u3: Any, sin: Fn, cos: Fn, sqrt: Fn) -> tuple[Any, Any, Any, Any]:
    """Angles uniform in [-pi, pi) and a target uniform in the reachable annulus, from four U[0, 1) draws."""
    pi, two_pi = math.pi, 2.0 * math.pi
    r = sqrt(k.r2_min + k.r2_span * u2)
    phi = -pi + two_pi * u3
    return -pi + two_pi * u0, -pi + two_pi * u1, r * cos(phi), r * sin(phi)


def reward(k: _Arm, distance: Any, a1: Any, a2: Any) -> Any:
    """Minus the distance, minus the torque cost of the normalised action."""
    return -distance - k.torque_cost * (a1 * a1 + a2 * a2)


def _spaces(k: _Arm) -> tuple[spaces.Box, spaces.Box]:
    """Observation and action space of one arm."""
    t, v = k.target_bound, k.max_speed
    high = np.array([1.0, 1.0, 1.0, 1.0, v, v, t, t, t + k.reach, t + k.reach], dtype=np.float32)
    return spaces.Box(-high, high, dtype=np.float32), spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)


class RoboticArmEnv(Snapshot, CanvasOwner, gym.Env[np.ndarray, np.ndarray]):
    r"""Move the fingertip of a planar two-link arm onto a target by applying torques at its two joints.

    ## Description
    Link 1 (`l1`) turns about the shoulder at the origin, link 2 (`l2`) about the elbow. Bring the fingertip
    within `tolerance` of a target drawn at every reset uniformly (in area) in the reachable annulus
    `|l1 - l2| <= r < l1 + l2`, or at `fixed_target`.

    ## Action Space
    `Box(-1, 1, (2,), float32)`: shoulder and elbow torque over `max_torque`. Other actions raise `ValueError`.

    ## Observation Space
    `Box((10,), float32)`: cos q1, sin q1, cos q2, sin q2 (q1 the shoulder's angle from the x axis, q2 the elbow's
    from link 1), the joint velocities, the target (x, y) and target minus fingertip, within +-1, +-`max_speed`,
    +-R and +-(R + l1 + l2), R the reach l1 + l2 (or a farther `fixed_target`'s).

    ## Rewards
    `-distance - torque_cost * |a|^2`, `distance` from fingertip to target after the step. `info` holds
    `"distance"` and `"is_success"` at every step and reset.

    ## Starting State
    Joint angles uniform in [-pi, pi), velocities zero, the target as above; a start already at the target is
    drawn again.

    ## Episode End
    Termination (success): distance < `tolerance`. Truncation: `max_episode_steps`.

    ## Arguments
    `gym.make("rlkit/RoboticArm-v1", render_mode="rgb_array", gravity=True)` after `import rlkit.envs`: the
    fields of :class:`RoboticArmConfig` but `name` and the thresholds (`gravity=True` means 9.81 m/s^2);
    `render_mode` `"human"` or `"rgb_array"` (with the last 50 fingertip positions).
    Damping 0.5 caps a joint at max_torque / damping = 4 rad/s (at 0.05, 46% success after 200k MADDPG steps;
    86% at 0.5). Holding the arm level under gravity takes `g (m1 l1 / 2 + m2 (l1 + l2 / 2))` N m at the shoulder.

    ## Dynamics
    A planar two-link arm of uniform rods (Spong, Hutchinson and Vidyasagar, "Robot Modeling and Control", 7.4):

        M(q) qdd + C(q, qd) qd + g(q) + damping * qd = tau
        M(q) = [[alpha + 2 beta cos q2,  delta + beta cos q2],
                [delta + beta cos q2,    delta             ]]
        C(q, qd) qd = beta sin q2 * [-(2 qd1 qd2 + qd2^2), qd1^2]
        g(q) = gravity * [(m1 lc1 + m2 l1) cos q1 + m2 lc2 cos(q1 + q2),  m2 lc2 cos(q1 + q2)]

    with lc_i = l_i / 2, I_i = m_i l_i^2 / 12, alpha = I1 + I2 + m1 lc1^2 + m2 (l1^2 + lc2^2),
    beta = m2 l1 lc2, delta = I2 + m2 lc2^2, M solved in closed form (det M = alpha delta - delta^2 -
    beta^2 cos^2 q2 > 0). RK4 steps of `dt` (`frame_skip` per env step), each followed by clipping the
    velocities to `max_speed`; the angles wrapped to [-pi, pi) after the env step. Without torque, damping or
    speed limit the energy (`env.unwrapped.energy`) is conserved to about 1e-6 over 1,000 env steps.

    ## Version History
    * v1: initial version.
    """

    _snapshot_attrs = ("_state", "_target", "_needs_reset", "_np_random")
    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 20}
    TRAIL = 50  # fingertip positions drawn behind the arm

    def __init__(self, render_mode: str | None = None, **params: Any) -> None:
        cfg = env_config(RoboticArmConfig, params, render_mode, self.metadata["render_modes"],
                         skip=("max_episode_steps",))
        self._arm = k = _Arm(cfg)
        self.__dict__.update(k.public)  # link_lengths, max_torque, ...: readable attributes
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": max(1, round(1.0 / (k.dt * k.frame_skip)))}
        self.observation_space, self.action_space = _spaces(k)
        v = k.max_speed
        self._advance = make_advance(k, math.sin, math.cos, lambda w: w if -v <= w <= v else (v if w > v else -v))
        self._state = (0.0, 0.0, 0.0, 0.0)  # q1, q2 (rad), qd1, qd2 (rad/s)
        self._target = (k.reach, 0.0)
        self._needs_reset = True
        self._trail: deque[tuple[float, float]] = deque(maxlen=self.TRAIL)

    def _action(self, action: Any) -> tuple[float, float]:
        """The two normalised torques, refusing actions outside the space."""
        a = action if type(action) is np.ndarray else np.asarray(action)
        if a.shape == (2,) and a.dtype.kind in "fiu":
            a1, a2 = a.tolist()  # floats, or ints that every later product turns into the same floats
            if -1.0 <= a1 <= 1.0 and -1.0 <= a2 <= 1.0:
                return a1, a2
        raise ValueError(f"action {action!r} is outside the action space {self.action_space}: expected two finite "
                         "numbers in [-1, 1] (shoulder and elbow torque over max_torque)")

    def _observe(self, w1: float, w2: float) -> tuple[np.ndarray, float]:
        tx, ty = self._target
        c1, s1, c2, s2, dx, dy, distance = observe(self._arm, self._state[0], self._state[1], tx, ty, math.sin,
                                                   math.cos, math.sqrt)
        if self.render_mode is not None:
            self._trail.append((tx - dx, ty - dy))
        return np.array((c1, s1, c2, s2, w1, w2, tx, ty, dx, dy), dtype=np.float32), distance

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply the torques for `dt * frame_skip` seconds."""
        if self._needs_reset:
            raise RuntimeError("RoboticArmEnv.step() called before reset() or after the episode ended")
        a1, a2 = self._action(action)
        k = self._arm
        q1, q2, w1, w2 = self._state
        self._state = self._advance(q1, q2, w1, w2, a1 * k.max_torque, a2 * k.max_torque)
        obs, distance = self._observe(self._state[2], self._state[3])
        success = distance < k.tolerance
        self._needs_reset = success
        if self.render_mode == "human":
            self.render()
        return obs, reward(k, distance, a1, a2), success, False, {"distance": distance, "is_success": success}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode: random joint angles at rest, and a new target unless it is fixed (no options)."""
        super().reset(seed=seed)
        k = self._arm
        while True:
            u0, u1, u2, u3 = self.np_random.random(4).tolist()
            q1, q2, tx, ty = start(k, u0, u1, u2, u3, math.sin, math.cos, math.sqrt)
            target = k.fixed_target or (tx, ty)
            if observe(k, q1, q2, *target, math.sin, math.cos, math.sqrt)[-1] >= k.tolerance:
                break
        self._state, self._target = (q1, q2, 0.0, 0.0), target
        self._trail.clear()
        self._needs_reset = False
        obs, distance = self._observe(0.0, 0.0)
        if self.render_mode == "human":
            self.render()
        return obs, {"distance": distance, "is_success": False}

    @property
    def fingertip(self) -> np.ndarray:
        """The fingertip's position (m) in the current state."""
        q1, q2 = self._state[0], self._state[1]
        return np.array(fingertip(self._arm, math.cos(q1), math.sin(q1), math.cos(q2), math.sin(q2)))

    @property
    def energy(self) -> float:
        """Kinetic plus potential energy (J) of the dynamics model (zero potential with the arm level)."""
        k, (q1, q2, w1, w2) = self._arm, self._state
        m11, m12 = k.alpha + 2.0 * k.beta * math.cos(q2), k.delta + k.beta * math.cos(q2)
        kinetic = 0.5 * (m11 * w1 * w1 + 2.0 * m12 * w1 * w2 + k.delta * w2 * w2)
        return kinetic + k.gravity_1 * math.sin(q1) + k.gravity_2 * math.sin(q1 + q2)

    def render(self) -> np.ndarray | None:
        """Draw the workspace, the fingertip's trail, the target and the arm."""
        canvas = self._frame(500, 500, "rlkit: robotic arm")
        if canvas is None:
            return None
        k = self._arm
        scale = 0.45 * canvas.width / k.target_bound
        cx, cy = canvas.width / 2.0, canvas.height / 2.0

        def px(x: float, y: float) -> tuple[float, float]:
            return cx + x * scale, cy + y * scale

        # The reachable annulus, in light grey.
        canvas.circle(cx, cy, k.reach * scale, (232, 232, 232))
        canvas.circle(cx, cy, abs(k.l1 - k.l2) * scale, (255, 255, 255))
        trail = list(self._trail)
        for i in range(1, len(trail)):
            fade = int(220 - 160 * i / len(trail))  # older positions paler
            canvas.line(px(*trail[i - 1]), px(*trail[i]), (fade, fade, 255), 2)
        canvas.circle(*px(*self._target), max(4.0, k.tolerance * scale), (210, 40, 40))

        q1, q2 = self._state[0], self._state[1]
        elbow = (k.l1 * math.cos(q1), k.l1 * math.sin(q1))
        tip = (elbow[0] + k.l2 * math.cos(q1 + q2), elbow[1] + k.l2 * math.sin(q1 + q2))
        canvas.line(px(0.0, 0.0), px(*elbow), (90, 90, 110), 10)
        canvas.line(px(*elbow), px(*tip), (130, 130, 160), 8)
        canvas.circle(cx, cy, 9, (20, 20, 20))
        canvas.circle(*px(*elbow), 7, (60, 60, 200))
        canvas.circle(*px(*tip), 4, (20, 150, 60))
        return canvas.finish()


class RoboticArmVectorEnv(BatchedEnv):
    """``num_envs`` robotic arms (:class:`BatchedEnv`); ``gym.make_vec`` makes it with the config's fields.

    ``info`` holds ``distance`` and ``is_success`` arrays with their ``_`` masks (a restarted copy's: its reset's).
    """

    _snapshot_attrs = ("_state", "_target", "_steps", "_prev_done", "_streams", "_needs_reset")

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **params: Any) -> None:
        cfg = env_config(RoboticArmConfig, params, render_mode, self.metadata["render_modes"])
        self._arm = k = _Arm(cfg)
        self.__dict__.update(k.public)
        super().__init__(num_envs, cfg.max_episode_steps, _spaces(k))
        # The single env's clip: w is a fresh temporary, clipped in place.
        v = k.max_speed
        self._advance = make_advance(k, np.sin, np.cos, lambda w: np.minimum(np.maximum(w, -v, out=w), v, out=w))
        self._state = np.zeros((4, num_envs))  # rows: q1, q2, qd1, qd2 (float64)
        self._target = np.zeros((2, num_envs))  # rows: target x, y

    def _start(self, idx: np.ndarray) -> None:
        """Draw new episodes for the copies in ``idx``, redrawing those already at their target."""
        k = self._arm
        while idx.size:
            u = self._streams.draw(idx, 0.0, 1.0)  # 0 + 1 * u: the single env's raw draws, unchanged
            q1, q2, tx, ty = start(k, u[0], u[1], u[2], u[3], np.sin, np.cos, np.sqrt)
            if k.fixed_target is not None:
                tx, ty = np.full(idx.size, k.fixed_target[0]), np.full(idx.size, k.fixed_target[1])
            ok = observe(k, q1, q2, tx, ty, np.sin, np.cos, np.sqrt)[-1] >= k.tolerance
            done = idx[ok]
            self._state[0, done], self._state[1, done], self._state[2:, done] = q1[ok], q2[ok], 0.0
            self._target[0, done], self._target[1, done] = tx[ok], ty[ok]
            idx = idx[~ok]

    def _actions(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """The normalised torques of each copy; refuses actions outside the space, naming what was wrong."""
        a = np.asarray(actions)
        n = self.num_envs
        if a.shape != (n, 2) or a.dtype.kind not in "fiu" or not (np.abs(a) <= 1.0).all():
            raise ValueError(f"actions must be {n} pairs of finite numbers in [-1, 1] (shape ({n}, 2)); got shape "
                             f"{a.shape}, dtype {a.dtype}"
                             + (f", range [{a.min()}, {a.max()}]" if a.size and a.dtype.kind in "fiu" else ""))
        a = a.astype(np.float64)
        return a[:, 0], a[:, 1]

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Advance every copy by ``dt * frame_skip`` s; copies that ended last step start a new episode instead."""
        if self._needs_reset:
            raise RuntimeError("RoboticArmVectorEnv.step() called before reset()")
        k = self._arm
        a1, a2 = self._actions(actions)
        s = self._state
        s[:] = self._advance(s[0], s[1], s[2], s[3], a1 * k.max_torque, a2 * k.max_torque)
        restarted = self._restart()
        obs, info = self._reply()
        terminated = info["is_success"].copy()
        truncated = self._steps >= self.max_episode_steps
        rewards = reward(k, info["distance"], a1, a2)
        if restarted is not None:
            rewards[restarted] = 0.0
        np.logical_or(terminated, truncated, out=self._prev_done)
        return obs, rewards, terminated, truncated, info

    def _reply(self) -> tuple[np.ndarray, dict[str, Any]]:
        s, (tx, ty) = self._state, self._target
        c1, s1, c2, s2, dx, dy, distance = observe(self._arm, s[0], s[1], tx, ty, np.sin, np.cos, np.sqrt)
        rows = np.empty((10, self.num_envs), dtype=np.float32)
        for i, row in enumerate((c1, s1, c2, s2, s[2], s[3], tx, ty, dx, dy)):
            rows[i] = row
        mask = np.ones(self.num_envs, dtype=bool)
        info = {"distance": distance, "is_success": distance < self._arm.tolerance, "_distance": mask,
                "_is_success": mask.copy()}
        # (num_envs, 10) in column-major layout: writing whole rows is faster than a row-major copy.
        return rows.T, info
