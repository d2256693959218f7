"""Frame sets for benchmarks: made once before any timing, then cycled with fresh headers.

The synthetic renderer is slow (about 4 frames/s at 640x480), so it is never timed: a few distinct frames are
rendered up front and repeated. A repeated frame keeps its images, camera models and pose but gets a new header
(stamps increasing at the source rate) and index, so stateful stages (ground filter, online classifier, maps,
tracker) see an ordinary, ever-advancing stream. The camera models are the same objects in every copy, as they are
in a real source (the pipeline keeps its rectifier while they do not change).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from tqdm import tqdm

from perception.errors import InputError
from perception.frame import Frame, Header

log = logging.getLogger(__name__)

EUROC_BAG = "euroc_stereo_bag"


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480); a clear error naming the value otherwise."""
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise InputError("is not a size WxH", subject=repr(text), hint="e.g. 640x480") from None
    if not (32 <= w <= 8192 and 32 <= h <= 8192):
        raise InputError("must be between 32x32 and 8192x8192", subject=repr(text))
    return w, h


def synthetic_frames(size: str, count: int, *, seed: int = 0, progress: bool = True) -> list[Frame]:
    """`count` distinct frames of the synthetic drive (seed `seed`) at `size`, rendered now."""
    from perception.sources.synthetic import SyntheticSource

    if count < 1:
        raise InputError("must be at least 1", subject="distinct synthetic frames")
    parse_size(size)
    source = SyntheticSource(seed=seed, frames=count, size=size)
    with source:
        return list(tqdm(source, total=count, unit="frame", file=sys.stderr, disable=not progress,
                         desc=f"render {size}"))


def euroc_frames(data_dir: str | Path | None = None) -> tuple[list[Frame], str]:
    """The EuRoC stereo bag's frames (raw, unrectified, mono8 752x480) and where they came from, or ([], why not)."""
    from perception.sources import open_source

    root = data_dir if data_dir is not None else os.environ.get("PERCEPTION_DATA")
    if not root:
        return [], "skipped: PERCEPTION_DATA is not set"
    path = Path(root) / EUROC_BAG
    if not path.exists():
        return [], f"skipped: {path} does not exist"
    source = open_source(str(path))
    with source:
        frames = list(source)
    if not frames:
        return [], f"skipped: {path} gave no frames ({source.stats.summary()})"
    return frames, str(path)


def cycle(frames: Sequence[Frame], count: int, *, start_index: int = 0, period_ns: int | None = None) -> Iterator[Frame]:
    """`count` frames: `frames` repeated in order, each copy with a new header and index, stamps strictly
    increasing by `period_ns` (default: the median spacing of `frames`, else 100 ms) from the first frame's stamp."""
    if not frames:
        raise InputError("no frames to cycle", subject="benchmark frame set")
    stamps = [f.header.stamp_ns for f in frames]
    if period_ns is None:
        gaps = sorted(b - a for a, b in zip(stamps, stamps[1:]) if b > a)
        period_ns = gaps[len(gaps) // 2] if gaps else 100_000_000
    t0 = stamps[0]
    for k in range(count):
        i = start_index + k
        f = frames[i % len(frames)]
        yield dataclasses.replace(f, header=Header(t0 + i * period_ns, f.header.frame_id), index=i)
