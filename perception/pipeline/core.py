"""Per-frame composition of the stages, with per-stage timing and per-frame error isolation.

Order: rectify (raw inputs only) -> disparity. A frame that fails a stage with a `PerceptionError`
(bad encoding, mismatched sizes, missing calibration...) is counted under its reason and the pipeline goes
on with the next frame; nothing escapes `process`.

Stages of DESIGN.md not in this release are listed in `NOT_BUILT` with their issue, so every front end
(demo, replay, nodes) says the same thing about them.
"""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perception.camera.rectify import StereoRectifier
from perception.errors import InputError, PerceptionError
from perception.frame import Frame, Header
from perception.sources.base import SourceStats
from perception.stereo.disparity import DisparityConfig, DisparityResult, compute_disparity

STAGES = ("rectify", "disparity")
NOT_BUILT = {"terrain": 5, "map": 6, "viewer": 6, "scene": 7, "detect": 8}


@dataclass
class PipelineConfig:
    """Everything the pipeline is configured with; the nodes declare these as ROS parameters."""

    disparity: DisparityConfig = field(default_factory=DisparityConfig)


@dataclass
class FrameResult:
    """What one frame produced. `frame` is the rectified frame; `error` is set when the frame was skipped."""

    header: Header
    frame: Frame
    disparity: DisparityResult | None = None
    baseline_m: float | None = None
    # terrain (issue 5): ground + stereo labels (`near.labels.image` is `terrain/labels`), the long-range classes
    # (`terrain.classes` is `terrain/classes`), the terrain cost grid (`terrain/costmap`)
    near: Any = None  # perception.stereo.near_range.NearRangeResult
    terrain: Any = None  # perception.terrain.long_range.LongRangeResult
    terrain_map: Any = None  # perception.mapping.MapGrid (OccupancyGrid data, origin in odom)
    fused_map: Any = None  # perception.mapping.MapGrid: `map/costmap` for the planner
    scene: Any = None  # issue 7
    detections: Any = None  # issue 8
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


class StageTimes:
    """Per-stage wall time in ms: count, mean, p50, p99, max over a bounded window of recent frames."""

    def __init__(self, window: int = 1000) -> None:
        self.window = window
        self._samples: dict[str, list[float]] = defaultdict(list)

    def add(self, stage: str, ms: float) -> None:
        samples = self._samples[stage]
        samples.append(ms)
        if len(samples) > self.window:
            del samples[: len(samples) - self.window]

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for stage, samples in self._samples.items():
            arr = np.asarray(samples)
            out[stage] = {
                "n": int(arr.size),
                "mean_ms": round(float(arr.mean()), 3),
                "p50_ms": round(float(np.percentile(arr, 50)), 3),
                "p99_ms": round(float(np.percentile(arr, 99)), 3),
                "max_ms": round(float(arr.max()), 3),
            }
        return out


class Pipeline:
    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = config or PipelineConfig()
        self.stats = SourceStats()
        self.times = StageTimes()
        self._rectifier: StereoRectifier | None = None

    @contextmanager
    def _timed(self, result: FrameResult, stage: str):
        t0 = time.perf_counter()
        yield
        ms = (time.perf_counter() - t0) * 1e3
        result.timings_ms[stage] = ms
        self.times.add(stage, ms)

    def _rectifier_for(self, frame: Frame) -> StereoRectifier:
        r = self._rectifier
        if r is None or r.left_info is not frame.left_info or r.right_info is not frame.right_info:
            r = self._rectifier = StereoRectifier(frame.left_info, frame.right_info)
        return r

    def process(self, frame: Frame) -> FrameResult:
        """Run every built stage on `frame`; never raises for bad input (see `FrameResult.error`)."""
        self.stats.frames_in += 1
        result = FrameResult(header=frame.header, frame=frame)
        try:
            if frame.right is None:
                raise InputError("is mono; this release's stages need a stereo pair", subject=f"frame {frame.index}")
            rectifier = self._rectifier_for(frame)
            with self._timed(result, "rectify"):
                result.frame = rectifier.rectify_frame(frame)
            result.baseline_m = rectifier.baseline
            with self._timed(result, "disparity"):
                result.disparity = compute_disparity(result.frame.left, result.frame.right, self.config.disparity)
        except PerceptionError as err:
            result.error = str(err)
            self.stats.skip(type(err).__name__, result.error)
            return result
        self.stats.used += 1
        return result
