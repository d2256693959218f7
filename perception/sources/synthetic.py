"""Frames from the synthetic stereo world (`perception.sim`): a calibrated pair with full ground truth.

>>> from perception.sources.synthetic import SyntheticSource
>>> with SyntheticSource(seed=0, frames=3, size="320x240") as src:
...     n = sum(1 for _ in src)
>>> n
3
"""
from __future__ import annotations

from collections.abc import Iterator

from perception.frame import Frame
from perception.sources.base import FrameSource


class SyntheticSource(FrameSource):
    """`frames` frames of a deterministic drive; `size` 'WxH' or (W, H); other keywords go to `SimConfig`
    (baseline, camera_height, pitch_deg, hfov_deg, speed, change_frame, change, change_class, fps, ...).

    `start` skips to a later frame of the same drive (frames are independent, so this costs nothing)."""

    def __init__(self, seed: int = 0, frames: int = 100, size: str | tuple[int, int] = "640x480", *, start: int = 0, **kw):
        super().__init__()
        from perception.sim import SimConfig, SimWorld  # heavy-ish: built on first use

        self.config = SimConfig.with_size(size, seed=seed, frames=start + frames, **kw)
        self.world = SimWorld(self.config)
        self.start = start
        self.frames = frames

    def __len__(self) -> int:
        return self.frames

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.start, self.start + self.frames):
            self.stats.frames_in += 1
            frame = self.world.render(i)
            self.stats.used += 1
            yield frame

    @property
    def left_info(self):
        return self.world.left_info

    @property
    def right_info(self):
        return self.world.right_info
