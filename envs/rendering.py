"""A small pygame canvas shared by rlkit's environments; pygame is imported only when the first frame is drawn."""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import gymnasium as gym
import numpy as np

from rlkit.errors import ConfigError

Color = tuple[int, int, int]


HEADLESS_DRIVERS = ("offscreen", "dummy")  # SDL's video drivers that draw into memory, never into a window


def _refuse_without_display(reason: str | None = None) -> None:
    """Refuse human rendering where no window can open (SDL would play on, unseen); ``SDL_VIDEODRIVER`` overrides."""
    x11_like = sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd"))
    if reason is None and x11_like and "SDL_VIDEODRIVER" not in os.environ and \
            not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        reason = "neither DISPLAY nor WAYLAND_DISPLAY is set"
    if reason is not None:
        raise ConfigError(f"render_mode=human needs a window, and none can open here ({reason}): record a video "
                          "instead with video=true")


class PygameCanvas:
    """A white drawing surface in world-up coordinates: a window paced at ``fps`` (human) or frames (rgb_array)."""

    def __init__(self, width: int, height: int, render_mode: str, fps: int, caption: str = "rlkit") -> None:
        # pygame prints a banner on import unless told not to.
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame
        from pygame import gfxdraw

        self._pg, self._gfx = pygame, gfxdraw
        self.width, self.height, self.render_mode, self.fps, self.closed = width, height, render_mode, fps, False
        self._window: Any = None
        self._clock: Any = None
        if render_mode == "human":
            _refuse_without_display()
            pygame.display.init()
            driver = pygame.display.get_driver()
            if driver in HEADLESS_DRIVERS and "SDL_VIDEODRIVER" not in os.environ:
                pygame.display.quit()
                _refuse_without_display(f"SDL found no display and chose its {driver} driver")
            pygame.display.set_caption(caption)
            self._window = pygame.display.set_mode((width, height))
            self._clock = pygame.time.Clock()
        self._surf = pygame.Surface((width, height))

    def begin(self) -> None:
        """Clear the surface for a new frame."""
        self._surf.fill((255, 255, 255))

    def _y(self, y: float) -> int:  # world-up to pixel rows
        return int(round(self.height - y))

    def line(self, p0: tuple[float, float], p1: tuple[float, float], color: Color, width: int = 1) -> None:
        """Draw a line between two points."""
        self._pg.draw.line(self._surf, color, (p0[0], self._y(p0[1])), (p1[0], self._y(p1[1])), width)

    def polygon(self, points: list[tuple[float, float]], color: Color) -> None:
        """Draw a filled, anti-aliased polygon."""
        pts = [(int(round(x)), self._y(y)) for x, y in points]
        self._gfx.aapolygon(self._surf, pts, color)
        self._gfx.filled_polygon(self._surf, pts, color)

    def circle(self, x: float, y: float, radius: float, color: Color) -> None:
        """Draw a filled, anti-aliased circle."""
        cx, cy, r = int(round(x)), self._y(y), int(round(radius))
        self._gfx.aacircle(self._surf, cx, cy, r, color)
        self._gfx.filled_circle(self._surf, cx, cy, r, color)

    def finish(self) -> np.ndarray | None:
        """Show the frame (human) or return it as an ``(height, width, 3)`` uint8 array (rgb_array)."""
        if self.render_mode == "rgb_array":
            return np.transpose(np.array(self._pg.surfarray.pixels3d(self._surf)), axes=(1, 0, 2))
        if self.closed:
            return None
        # Closing the window ends an evaluation cleanly instead of freezing the process.
        for event in self._pg.event.get():
            if event.type == self._pg.QUIT:
                self.close()
                return None
        self._window.blit(self._surf, (0, 0))
        self._pg.event.pump()
        self._clock.tick(self.fps)
        self._pg.display.flip()
        return None

    def close(self) -> None:
        """Close the window and shut pygame's display down."""
        if self._window is not None:
            self._pg.display.quit()
            self._window = None
        self.closed = True


def draw_cart_pole(canvas: PygameCanvas, x: float, theta: float, x_threshold: float, scale: float, track_y: float,
                   pole_len: float, cart_height: float) -> None:
    """One cart-pole (``x`` in m, ``scale`` pixels a metre): its track, red at ``x_threshold``, the cart, the pole."""
    pole_width, axle_y = cart_height / 3, track_y + cart_height / 4
    cart_x = x * scale + canvas.width / 2.0
    canvas.line((0, track_y), (canvas.width, track_y), (0, 0, 0))
    for edge in (-x_threshold, x_threshold):
        ex = edge * scale + canvas.width / 2.0
        canvas.line((ex, track_y - pole_width), (ex, track_y + pole_width), (200, 0, 0))
    left, right, top, bottom = -25.0, 25.0, cart_height / 2, -cart_height / 2
    canvas.polygon([(cx + cart_x, cy + track_y) for cx, cy in [(left, bottom), (left, top), (right, top),
                                                                 (right, bottom)]], (0, 0, 0))
    left, right, top, bottom = -pole_width / 2, pole_width / 2, pole_len - pole_width / 2, -pole_width / 2
    cos, sin = math.cos(-theta), math.sin(-theta)  # rotated by -theta: positive angles lean the pole to the right
    canvas.polygon([(px * cos - py * sin + cart_x, px * sin + py * cos + axle_y)
                    for px, py in [(left, bottom), (left, top), (right, top), (right, bottom)]], (202, 152, 101))
    canvas.circle(cart_x, axle_y, pole_width / 2, (129, 132, 203))


class CanvasOwner:
    """Mixin for environments that draw on a :class:`PygameCanvas` kept in ``self._canvas``."""

    _canvas: PygameCanvas | None = None
    render_mode: str | None
    metadata: dict[str, Any]

    def _frame(self, width: int, height: int, caption: str) -> PygameCanvas | None:
        """The canvas, cleared for a new frame (made on first use); None, with a warning, without a render mode."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        if self._canvas is None:
            self._canvas = PygameCanvas(width, height, self.render_mode, self.metadata["render_fps"], caption)
        self._canvas.begin()
        return self._canvas

    @property
    def window_closed(self) -> bool:
        """True once a user has closed the human-mode window (an evaluation then stops)."""
        return self._canvas is not None and self._canvas.closed

    def close(self) -> None:
        """Close the pygame window, if one is open."""
        if self._canvas is not None:
            self._canvas.close()
            self._canvas = None
