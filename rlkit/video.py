"""Rendered frames streamed to a video file through a pipe to the ffmpeg that imageio-ffmpeg ships."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlkit.errors import RlkitError

VIDEO_FORMATS = ("mp4", "gif")

# H.264 in yuv420p (what every player plays) needs even frame sizes: pad odd ones by a white row or column.
_MP4: dict[str, Any] = {"codec": "libx264", "pix_fmt_out": "yuv420p", "quality": 7,
        "output_params": ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2:color=white"]}
# GIF: an optimal 256-colour palette for each frame, computed as the frame arrives (constant memory).
_GIF: dict[str, Any] = {"codec": "gif", "pix_fmt_out": "pal8", "quality": None,
        "output_params": ["-vf", "split[a][b];[a]palettegen=stats_mode=single[p];[b][p]paletteuse=new=1"]}


class VideoWriter:
    """Streams RGB frames to an MP4 (H.264) or GIF file (``path``'s suffix); the first frame fixes the size."""

    def __init__(self, path: Path, fps: float) -> None:
        fmt = path.suffix.lower().lstrip(".")
        if fmt not in VIDEO_FORMATS:
            raise RlkitError(f"cannot write {path}: a video must be one of {', '.join(VIDEO_FORMATS)}")
        self.path = path
        self.fps = fps
        self.frames = 0  # written so far
        self._options: dict[str, Any] = _MP4 if fmt == "mp4" else _GIF
        self._size: tuple[int, int] | None = None
        self._pipe: Any = None

    def append(self, frame: Any) -> None:
        """Add one ``(height, width, 3)`` uint8 frame (an alpha channel is dropped)."""
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] not in (3, 4):
            got = type(frame).__name__ if not isinstance(frame, np.ndarray) else f"an array of shape {frame.shape}"
            raise RlkitError(f"a video needs (height, width, 3) RGB frames from render(), got {got}; does the "
                             "environment support render_mode=rgb_array?")
        rgb = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
        size = (rgb.shape[1], rgb.shape[0])
        if self._pipe is None:
            import imageio_ffmpeg

            self._size = size
            # macro_block_size=1: the options pad what needs padding, instead of imageio-ffmpeg's rescaling.
            self._pipe = imageio_ffmpeg.write_frames(str(self.path), size, fps=self.fps, macro_block_size=1,
                                                     ffmpeg_log_level="error", **self._options)
            self._pipe.send(None)  # start the generator: ffmpeg now waits for frames
        elif size != self._size:
            raise RlkitError(f"the environment's frames changed size from {self._size} to {size} (width, height) "
                             "mid-video")
        self._pipe.send(rgb)
        self.frames += 1

    def close(self) -> None:
        """Finish the file (ffmpeg writes its trailer and exits)."""
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
