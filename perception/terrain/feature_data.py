"""Unlabelled training data for the terrain feature extractor: band-shaped strips 3@36xW from frames.

At run time the band pyramid (perception.terrain.bands) resamples the image by a factor about proportional to
ground distance, from ~1/6.7 for the nearest band to 1 at the horizon, THEN the net sees YUV with LCN'd Y. The
strips here are made the same way so the filters learn the statistics they will meet: each strip comes from the
frame resampled at a random scale, log-uniform in `scale_range` (default 0.15 .. 1.0), normalised as a whole
(preprocess.yuv_normalized: BGR -> YUV, LCN of Y, normalisation) AFTER resampling, and a random 36xW crop of it.

Frames: the synthetic world (perception.sim; several seeds, frames spread over the drive so that frames after the
world's terrain change are included) and any real images (`perception.sources.open_source` specs: image folders,
ROS 2 bags, videos; the left image of stereo sources). numpy + OpenCV only: no torch here.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from perception.errors import InputError, SourceError
from perception.terrain import preprocess
from perception.terrain.feature_net import HEIGHT, RECEPTIVE_FIELD

SCALE_RANGE = (0.15, 1.0)
STRIP_WIDTH = 64  # training crop width: 14 pooled columns, 10 layer-2 columns; wider costs time, not variety


@dataclass
class StripSet:
    """N x 3 x 36 x W float32 strips plus where they came from (for the model's `trained_on`)."""

    strips: np.ndarray
    sources: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> {"frames": F, "strips": S}

    def __len__(self) -> int:
        return int(self.strips.shape[0])

    def describe(self) -> str:
        parts = [f"{name} ({c['frames']} frames, {c['strips']} strips)" for name, c in self.sources.items()]
        return "; ".join(parts)


def random_strips(bgr: np.ndarray, count: int, rng: np.random.Generator, *, width: int = STRIP_WIDTH,
                  height: int = HEIGHT, scale_range: tuple[float, float] = SCALE_RANGE) -> list[np.ndarray]:
    """`count` strips (3 x height x width float32) from one BGR or mono uint8 frame, each at its own random scale.

    A scale that would leave the frame smaller than one strip is raised to the smallest that fits; a frame that
    cannot hold one strip even at scale 1 gives none.
    """
    if bgr.ndim not in (2, 3):
        raise InputError(f"shape {bgr.shape} is not an image", subject="frame")
    h, w = bgr.shape[:2]
    lo, hi = scale_range
    if not 0.0 < lo <= hi <= 4.0:
        raise InputError(f"scale range {scale_range} is not 0 < lo <= hi <= 4", subject="scale_range")
    floor = max(height / h, width / w)
    if floor > max(hi, 1.0):
        return []
    out = []
    for _ in range(count):
        s = max(math.exp(rng.uniform(math.log(lo), math.log(hi))), floor)
        size = (max(width, int(round(w * s))), max(height, int(round(h * s))))
        interp = cv2.INTER_AREA if s < 1.0 else cv2.INTER_LINEAR
        x = preprocess.yuv_normalized(cv2.resize(bgr, size, interpolation=interp))
        top = int(rng.integers(0, size[1] - height + 1))
        left = int(rng.integers(0, size[0] - width + 1))
        out.append(np.ascontiguousarray(x[top:top + height, left:left + width].transpose(2, 0, 1)))
    return out


def sim_frames(seeds: Iterable[int], frames_per_seed: int, *, size: tuple[int, int] = (640, 480),
               drive_frames: int = 100) -> Iterable[tuple[str, int, object]]:
    """(source name, seed, Frame) for `frames_per_seed` frames of each seed, evenly spread over a drive of
    `drive_frames` (the world changes half way, so about half the frames show the changed terrain)."""
    from perception.sim import SimConfig, SimWorld

    for seed in seeds:
        world = SimWorld(SimConfig(seed=int(seed), width=size[0], height=size[1], frames=drive_frames))
        count = min(frames_per_seed, drive_frames)
        for i in np.linspace(0, drive_frames - 1, count).round().astype(int):
            yield "sim", int(seed), world.render(int(i))


def source_images(spec: str | Path, limit: int, rng: np.random.Generator) -> tuple[list[np.ndarray], int]:
    """Up to `limit` left images from a source spec, a uniform random subset of all its frames (reservoir
    sampling: one pass, at most `limit` images held). Returns (images, frames seen)."""
    from perception.sources import open_source

    if not Path(spec).exists():
        raise SourceError("not found", subject=str(spec), hint="--images takes image folders, bags or videos")
    keep: list[np.ndarray] = []
    seen = 0
    source = open_source(spec)
    try:
        for frame in source:
            image = getattr(frame, "left", None)
            if image is None:
                continue
            if image.dtype != np.uint8:  # 16-bit mono: keep the top byte's range
                image = cv2.convertScaleAbs(image, alpha=255.0 / max(1.0, float(image.max())))
            seen += 1
            if len(keep) < limit:
                keep.append(image)
            else:
                j = int(rng.integers(0, seen))
                if j < limit:
                    keep[j] = image
    finally:
        close = getattr(source, "close", None)
        if close:
            close()
    if seen == 0:
        raise SourceError("no images in this source", subject=str(spec),
                          hint="--images takes folders of images, ROS 2 bags with image topics, or videos")
    return keep, seen


def collect_strips(*, seeds: Iterable[int] = (), sim_frames_per_seed: int = 0, images: Iterable[str] = (),
                   image_frames: int = 60, strips_per_frame: int = 32, width: int = STRIP_WIDTH,
                   scale_range: tuple[float, float] = SCALE_RANGE, sim_size: tuple[int, int] = (640, 480),
                   seed: int = 0, progress: Callable[[str], None] | None = None) -> StripSet:
    """Strips from synthetic frames of `seeds` and from up to `image_frames` frames of each `images` source."""
    if width < RECEPTIVE_FIELD[1]:
        raise InputError(f"strip width {width} is smaller than one {RECEPTIVE_FIELD[1]}-column window",
                         subject="--strip-width")
    rng = np.random.default_rng(seed)
    chunks: list[np.ndarray] = []
    sources: dict[str, dict[str, int]] = {}

    def add(name: str, image: np.ndarray) -> None:
        got = random_strips(image, strips_per_frame, rng, width=width, scale_range=scale_range)
        entry = sources.setdefault(name, {"frames": 0, "strips": 0})
        entry["frames"] += 1
        entry["strips"] += len(got)
        if got:
            chunks.append(np.stack(got))

    seeds = list(seeds)
    if seeds and sim_frames_per_seed > 0:
        name = f"synthetic world (perception.sim) seeds {','.join(str(s) for s in seeds)} at {sim_size[0]}x{sim_size[1]}"
        for _, s, frame in sim_frames(seeds, sim_frames_per_seed, size=sim_size):
            add(name, frame.left)
        if progress:
            progress(f"{name}: {sources[name]['strips']} strips")
    for spec in images:
        found, seen = source_images(spec, image_frames, rng)
        name = str(spec)
        for image in found:
            add(name, image)
        sources[name]["frames_in_source"] = seen
        if progress:
            progress(f"{name}: {len(found)} of {seen} frames, {sources[name]['strips']} strips")
    if not chunks:
        raise InputError("no training strips", subject="train features",
                         hint="give --sim-frames > 0 with --seeds, or --images with folders / bags of images")
    return StripSet(np.concatenate(chunks).astype(np.float32, copy=False), sources)
