"""Per-frame composition of the stages, with per-stage timing and per-frame error isolation.

Order: rectify (raw inputs only) -> scene -> disparity -> points -> ground + near-range labels -> detection
(boxes, stereo range, tracks, warnings; base_link from the ground plane) -> long-range terrain classes (bands,
feature net, online classifier) -> maps (terrain; fused = terrain + scene costs + this frame's detection
footprints). A mono frame gets scene and detection (no range). A frame that fails a stage with a
`PerceptionError` (bad encoding, mismatched sizes, missing calibration...) is counted under its reason and the
pipeline goes on with the next frame; nothing escapes `process`.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perception.camera.rectify import StereoRectifier
from perception.detect.alerts import WarningConfig
from perception.detect.stage import DetectConfig, DetectStage, default_T_base_camera
from perception.detect.tracking import TrackerConfig
from perception.errors import InputError, PerceptionError
from perception.frame import Frame, Header
from perception.sources.base import SourceStats
from perception.mapping import MapConfig
from perception.mapping.footprints import paint_footprints
from perception.pipeline.scene_stage import SceneStageConfig, scene_observations
from perception.pipeline.terrain_stage import MapOutputConfig, TerrainStage
from perception.scene.costs import SceneCostTable
from perception.scene.parser import SceneParser
from perception.stereo.disparity import DisparityConfig, DisparityResult, compute_disparity
from perception.stereo.ground import GroundConfig
from perception.stereo.near_range import NearRangeResult
from perception.stereo.points import disparity_to_points, stereo_geometry
from perception.stereo.windows import LabelConfig
from perception.terrain.bands import BandConfig, ground_frame
from perception.terrain.classifier import ClassifierConfig
from perception.terrain.long_range import LongRangeConfig

STAGES = ("rectify", "disparity", "scene", "points", "ground", "labels", "detect", "track", "bands", "features",
          "update", "paint", "map")


@dataclass
class PipelineConfig:
    """Everything the pipeline is configured with; the nodes declare these as ROS parameters."""

    disparity: DisparityConfig = field(default_factory=DisparityConfig)
    ground: GroundConfig = field(default_factory=GroundConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    bands: BandConfig = field(default_factory=BandConfig)
    terrain: LongRangeConfig = field(default_factory=LongRangeConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    map: MapConfig = field(default_factory=MapConfig)
    costmap: MapOutputConfig = field(default_factory=MapOutputConfig)
    scene: SceneStageConfig = field(default_factory=SceneStageConfig)
    scene_costs: SceneCostTable = field(default_factory=SceneCostTable)
    detect: DetectConfig = field(default_factory=DetectConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    warnings: WarningConfig = field(default_factory=WarningConfig)


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
    map_frame_id: str = "odom"  # the maps' frame (the pose's parent); the images keep the camera's frame_id
    scene: Any = None  # perception.scene.parser.SceneResult (`scene/class_mask`, `scene/color_mask`)
    detections: Any = None  # perception.detect.stage.DetectOutput (`detections`, `warnings`, tracks, obstacles)
    work: dict[str, Any] = field(default_factory=dict)  # what `start` hands to `finish` (points, fits, boxes)
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str = ""
    error_kind: str = ""  # the error's class (InputError, ModelError...): what the skip is counted under

    @property
    def ok(self) -> bool:
        return not self.error


class StageTimes:
    """Per-stage wall time in ms: count, mean, p50, p99, max over a bounded window of recent frames."""

    def __init__(self, window: int = 1000) -> None:
        self.window = window
        self._samples: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # `Pipeline.start` and `finish` may run in two threads

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            samples = self._samples.get(stage)
            if samples is None:
                samples = self._samples[stage] = deque(maxlen=self.window)
            samples.append(ms)

    def summary(self) -> dict[str, dict[str, float]]:
        with self._lock:
            copies = {stage: np.asarray(samples) for stage, samples in self._samples.items()}
        out = {}
        for stage, arr in copies.items():
            out[stage] = {
                "n": int(arr.size),
                "mean_ms": round(float(arr.mean()), 3),
                "p50_ms": round(float(np.percentile(arr, 50)), 3),
                "p99_ms": round(float(np.percentile(arr, 99)), 3),
                "max_ms": round(float(arr.max()), 3),
            }
        return out


class Pipeline:
    """`terrain=False` runs rectify + disparity only; `model` / `default_weights`: the feature net and the
    classifier's offline defaults (None: the shipped ones)."""

    def __init__(self, config: PipelineConfig | None = None, *, terrain: bool = True, long_range: bool = True,
                 model=None, default_weights=None, scene_model=None) -> None:
        self.config = c = config or PipelineConfig()
        self.stats = SourceStats()
        self.times = StageTimes()
        self._rectifier: StereoRectifier | None = None
        self.terrain = TerrainStage(c.ground, c.labels, c.bands, c.terrain, c.classifier, c.map, c.costmap,
                                    long_range=long_range, model=model,
                                    default_weights=default_weights) if terrain else None
        self.scene = SceneParser(scene_model, backend=c.scene.backend,
                                 threads=c.scene.threads or None) if c.scene.enabled else None
        self.detect = DetectStage(c.detect, c.tracker, c.warnings) if c.detect.enabled else None
        self._terrain_frames = 0  # stereo frames through the terrain stage (long range every n-th)

    def close(self) -> None:
        for stage in (self.terrain, self.scene, self.detect):
            if stage is not None:
                stage.close()

    def resets(self) -> dict[str, int]:
        """Time-dependent state restarted after a jump in the stamps, by stage and reason (tracks, map clock)."""
        out = {}
        if self.detect is not None:
            out.update({f"tracker: {reason}": n for reason, n in self.detect.tracker.resets.items()})
        if self.terrain is not None:
            for name, m in (("terrain map", self.terrain.map), ("fused map", self.terrain.fused)):
                if m.clock_resets:
                    out[f"{name}: clock jumped back"] = m.clock_resets
        return out

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
        return self.finish(self.start(frame))

    def start(self, frame: Frame) -> FrameResult:
        """The work that needs nothing from earlier frames: rectify, scene, disparity, points and the ground
        planes' fit, the detection network and its stereo ranges.

        `finish` must follow, in frame order; `start` of a later frame may run in another thread meanwhile
        (`perception.pipeline.overlap`). Never raises for bad input: the error goes to `finish` in the result."""
        result = FrameResult(header=frame.header, frame=frame)
        try:
            if frame.right is None:
                if self.scene is None and self.detect is None:
                    raise InputError("is mono and the scene and detect stages are off; the other stages need a "
                                     "stereo pair", subject=f"frame {frame.index}",
                                     hint="enable scene.enabled or detect.enabled, or give a stereo source")
            else:
                rectifier = self._rectifier_for(frame)
                with self._timed(result, "rectify"):
                    result.frame = rectifier.rectify_frame(frame)
                result.baseline_m = rectifier.baseline
            if self.scene is not None:
                with self._timed(result, "scene"):
                    result.scene = self.scene.parse(result.frame.left, result.header)
            if frame.right is not None:
                with self._timed(result, "disparity"):
                    result.disparity = compute_disparity(result.frame.left, result.frame.right,
                                                         self.config.disparity)
                if self.terrain is not None:
                    self._fit_ground(result)
            if self.detect is not None:
                disparity = result.disparity.disparity if result.disparity is not None else None
                result.work["detect"] = self.detect.measure(result.frame, disparity)
        except PerceptionError as err:
            result.error, result.error_kind = str(err), type(err).__name__
        return result

    def finish(self, result: FrameResult) -> FrameResult:
        """The stages that carry state from frame to frame, for a `start`ed frame: ground, labels, ranging and
        tracking, long range (learning), maps. Never raises for bad input (see `FrameResult.error`)."""
        self.stats.frames_in += 1
        if not result.error:
            try:
                if self.terrain is not None and result.disparity is not None:
                    self._terrain(result)
                else:  # mono, or stereo without terrain: base_link from a level camera
                    self._detect(result, self._base_from_camera(None))
            except PerceptionError as err:
                result.error, result.error_kind = str(err), type(err).__name__
        result.work.clear()  # start's intermediates (point cloud...) are not kept with the result
        if result.error:
            self.stats.skip(result.error_kind, result.error)
        else:
            self.stats.used += 1
        return result

    def _base_from_camera(self, ground) -> np.ndarray:
        """base_link <- left optical frame: the camera's foot frame from the ground plane (else level, at the
        foot), shifted by where the foot is on the robot (`costmap.camera_x_m`, `camera_y_m`)."""
        if ground is not None and ground.ok:
            T = ground_frame(ground.primary.normal, ground.primary.d)
        else:
            T = default_T_base_camera()
        T[0, 3] += self.config.costmap.camera_x_m
        T[1, 3] += self.config.costmap.camera_y_m
        return T

    def _detect(self, result: FrameResult, T_base_camera: np.ndarray) -> None:
        if self.detect is None:
            return
        out = self.detect.track(result.frame, result.work["detect"], T_base_camera)
        result.detections = out
        # "track": stereo ranging, tracking, warnings and footprints
        for name, ms in (("detect", out.timings["detect_ms"]),
                         ("track", out.timings["range_ms"] + out.timings["track_ms"])):
            result.timings_ms[name] = ms
            self.times.add(name, ms)

    def _fit_ground(self, result: FrameResult) -> None:
        """The point cloud and the ground planes fitted to it (stateless; smoothing is in `finish`)."""
        frame, disp = result.frame, result.disparity
        geo = stereo_geometry(frame.left_info, frame.right_info)
        with self._timed(result, "points"):
            points = disparity_to_points(disp.disparity, frame.left_info, geo.baseline, doffs=geo.doffs)
            conf = np.where(disp.measured, disp.confidence, np.float32(0.0))  # filled pixels are guesses
        result.work.update(points=points, confidence=conf,
                           ground_fit=self.terrain.estimator.fit(points, conf))

    def _terrain(self, result: FrameResult) -> None:
        frame, disp, stage = result.frame, result.disparity, self.terrain
        w = result.work
        ground, labels = stage.near(w["points"], w["confidence"], frame.left_info, fit=w["ground_fit"])
        for name, ms in (("ground", ground.ms), ("labels", labels.ms)):
            result.timings_ms[name] = ms
            self.times.add(name, ms)
        result.near = NearRangeResult(ground, labels, disp)
        self._detect(result, self._base_from_camera(ground))
        far = None
        self._terrain_frames += 1
        if stage.long_range is not None and (self._terrain_frames - 1) % self.config.terrain.every_n_frames == 0:
            far = stage.long_range.process(frame.left, frame.left_info, ground, labels)
            for name, ms in far.timings_ms.items():
                result.timings_ms[name] = ms
                self.times.add(name, ms)
            result.terrain = far
        with self._timed(result, "map"):
            extra = []
            if result.scene is not None and self.config.scene.to_map:
                extra.append(scene_observations(result.scene, ground, frame.left_info, self.config.scene_costs,
                                                self.config.scene))
            result.terrain_map, result.fused_map = stage.update_map(
                frame.pose, result.header.stamp_ns, frame.left_info, ground, labels, far, extra)
            if result.detections is not None and self.config.detect.to_map:
                result.fused_map = paint_footprints(result.fused_map, [o.polygon for o in result.detections.obstacles],
                                                    frame.pose)
        result.map_frame_id = frame.pose.frame if frame.pose is not None else "odom"
