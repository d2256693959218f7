"""The whole detection stage for one frame, for the pipeline to call: detect, range, track, warn, map obstacles.

    stage = DetectStage()                                      # shipped model, default parameters
    out = stage.process(frame, disparity, T_base_camera)       # DetectOutput
    out.detections   # Detection2D at input resolution, position (left optical frame) from stereo, track_id
    out.ranges       # StereoRange or None per detection (range, disparity, size check)
    out.tracks       # confirmed tracks (base_link x, y, velocity relative to the vehicle, ttc())
    out.warnings     # CollisionWarning list, most urgent first, with the frame's header
    out.obstacles    # MapObstacle footprints in base_link for the fused map
    out.header       # the frame's header (stamp, frame_id), unchanged

Mono frames (no disparity): detections and image-space tracks only (no range, no velocity, no warnings).
Detections whose size does not fit their class at the measured range are kept but get no position (their range is
not trusted) when `drop_implausible_range` is on.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from perception.detect.alerts import CollisionWarning, WarningConfig, evaluate_warnings
from perception.detect.obstacles import MapObstacle, camera_to_base, detections_to_map_obstacles
from perception.detect.ranging import StereoRange, gray, range_box
from perception.detect.tracking import Track, Tracker, TrackerConfig
from perception.params import param, validate_config


@dataclass(frozen=True)
class DetectConfig:
    enabled: bool = param(True, "run detection (detections, warnings, obstacles in map/costmap)")
    to_map: bool = param(True, "paint ranged detections into the fused map (map/costmap) as lethal footprints")
    model: str = param("", "detector ONNX (empty: the shipped engines/detect_sim_camvid.onnx)", choices=None)
    backend: str = param("auto", "engine backend", choices=("auto", "onnxruntime", "tensorrt"))
    score_threshold: float = param(0.3, "score threshold for every class", 0.0, 1.0)
    pedestrian_threshold: float = param(-1.0, "pedestrian score threshold (-1: score_threshold)", -1.0, 1.0)
    nms_iou: float = param(0.5, "non-maximum suppression IoU (class-aware)", 0.05, 1.0)
    max_range: float = param(80.0, "detections ranged beyond this are kept without a position, m", 1.0, 1000.0)
    drop_implausible_range: bool = param(True, "no position for detections whose size does not fit the class")
    threads: int = param(1, "ONNX Runtime intra-op threads (0: one per core; 1, measured best: the pipeline "
                            "already runs two frames on two threads, docs/performance.md)", 0, 64)

    def __post_init__(self) -> None:
        validate_config(self)


@dataclass
class Measured:
    """What `DetectStage.measure` found in one frame: boxes (with stereo `position` where trusted), the ranges,
    and the times of the network and of the ranging, ms."""

    detections: list
    ranges: list[StereoRange | None]
    detect_ms: float
    range_ms: float


@dataclass
class DetectOutput:
    detections: list
    ranges: list[StereoRange | None]
    tracks: list[Track]
    warnings: list[CollisionWarning]
    obstacles: list[MapObstacle]
    header: object
    ms: float
    timings: dict = field(default_factory=dict)


class DetectStage:
    def __init__(self, config: DetectConfig = DetectConfig(), tracker: TrackerConfig = TrackerConfig(),
                 warnings: WarningConfig = WarningConfig()) -> None:
        from perception.detect.detector import Detector

        self.config = config
        thresholds = None
        if config.pedestrian_threshold >= 0:
            thresholds = {"pedestrian": config.pedestrian_threshold}
        self.detector = Detector(config.model or None, backend=config.backend, threads=config.threads or None,
                                 nms_iou=config.nms_iou)
        self.detector.thresholds[:] = config.score_threshold
        if thresholds and "pedestrian" in self.detector.class_names:
            self.detector.thresholds[self.detector.class_names.index("pedestrian")] = config.pedestrian_threshold
        self.tracker = Tracker(tracker)
        self.warning_config = warnings

    def close(self) -> None:
        self.detector.close()

    def measure(self, frame, disparity: np.ndarray | None = None) -> Measured:
        """Boxes and their stereo ranges for `frame`: the stateless half of `process`, which a pipeline may run
        ahead, in another thread, while earlier frames are still being tracked."""
        from perception.stereo.points import stereo_geometry

        res = self.detector.detect(frame.left, frame.header)
        t1 = time.perf_counter()
        dets = res.detections
        ranges: list[StereoRange | None] = [None] * len(dets)
        if disparity is not None and frame.left_info is not None and frame.right_info is not None:
            g = stereo_geometry(frame.left_info, frame.right_info)
            left, right = (gray(frame.left), gray(frame.right)) if dets else (None, None)
            for k, d in enumerate(dets):
                r = range_box(disparity, d.corners, d.class_id, fx=g.fx, baseline=g.baseline, cx=g.cx, cy=g.cy,
                              fy=g.fy, doffs=g.doffs, left=left, right=right)
                ranges[k] = r
                ok = r is not None and r.range_m <= self.config.max_range and not (
                    self.config.drop_implausible_range and r.size_ok is False)
                d.position = r.position if ok else None
        return Measured(dets, ranges, res.ms, (time.perf_counter() - t1) * 1000.0)

    def track(self, frame, measured: Measured, T_base_camera=None) -> DetectOutput:
        """The stateful half of `process`, in frame order: base_link positions, tracks, warnings, footprints."""
        t2 = time.perf_counter()
        dets = measured.detections
        T = np.asarray(T_base_camera if T_base_camera is not None else default_T_base_camera(), np.float64)
        positions = [None if d.position is None else tuple(camera_to_base([d.position], T)[0][:2]) for d in dets]
        stamp = frame.header.stamp_s if frame.header is not None else 0.0
        tracks = self.tracker.update(dets, stamp, positions)
        warnings = evaluate_warnings(tracks, self.warning_config, frame.header)
        fx = frame.left_info.fx if frame.left_info is not None else None
        obstacles = detections_to_map_obstacles(dets, T, fx=fx, tracks=tracks)
        track_ms = (time.perf_counter() - t2) * 1000.0
        return DetectOutput(dets, measured.ranges, tracks, warnings, obstacles, frame.header,
                            measured.detect_ms + measured.range_ms + track_ms,
                            {"detect_ms": measured.detect_ms, "range_ms": measured.range_ms, "track_ms": track_ms})

    def process(self, frame, disparity: np.ndarray | None = None, T_base_camera=None) -> DetectOutput:
        """`frame`: perception.frame.Frame (left image, header, camera infos). `disparity`: HxW (px, NaN invalid)
        of the left image, or None. `T_base_camera`: 4x4 base_link <- left optical frame (default: the optical
        frame's axes turned to base_link's at the camera, i.e. no offset, no pitch)."""
        return self.track(frame, self.measure(frame, disparity), T_base_camera)


def default_T_base_camera() -> np.ndarray:
    """base_link <- optical frame with no offset and no pitch (z forward -> x, x right -> -y, y down -> -z)."""
    T = np.eye(4)
    T[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
    return T
