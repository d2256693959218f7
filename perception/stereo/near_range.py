"""A stereo frame in, its ground plane and near-range labels out: rectify -> disparity -> points -> ground -> labels.

`NearRangeLabeller(...).process(frame)` never raises for a bad frame: a missing calibration, mismatched image
sizes, malformed images (`PerceptionError` from rectification, disparity or triangulation) give
`GroundStatus.INVALID_INPUT`; a textureless or unmatched pair gives `NO_POINTS` with the disparity's reason; no
visible ground gives `NO_GROUND`. The labels are then all unknown and the next frame is processed normally (the
ground filter keeps its state for `GroundConfig.max_missed` bad frames).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from perception.camera.rectify import StereoRectifier
from perception.errors import InputError, PerceptionError
from perception.frame import Frame
from perception.stereo.disparity import DisparityConfig, DisparityResult, compute_disparity
from perception.stereo.ground import GroundConfig, GroundEstimate, GroundEstimator, GroundStatus
from perception.stereo.labels import LabelConfig, NearLabels, empty_labels, label_near_range
from perception.stereo.points import disparity_to_points, stereo_geometry


@dataclass
class NearRangeResult:
    """One frame: ground estimate, labels, the disparity (None when the frame failed before it) and stage times."""

    ground: GroundEstimate
    labels: NearLabels
    disparity: DisparityResult | None = None
    points: np.ndarray | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.ground.ok

    @property
    def status(self) -> GroundStatus:
        return self.ground.status

    @property
    def reason(self) -> str:
        return self.ground.reason


class NearRangeLabeller:
    """Stateful per stream (the ground filter). `keep_points` keeps the HxWx3 cloud in the result."""

    def __init__(self, disparity: DisparityConfig | None = None, ground: GroundConfig | None = None,
                 labels: LabelConfig | None = None, *, keep_points: bool = False) -> None:
        self.disparity_config = disparity or DisparityConfig()
        self.labels_config = labels or LabelConfig()
        self.estimator = GroundEstimator(ground or GroundConfig())
        self.keep_points = keep_points
        self._rectifier: StereoRectifier | None = None

    def _failed(self, shape, status: GroundStatus, reason: str, timings, disparity=None) -> NearRangeResult:
        ground = self.estimator.skip(status, reason)  # counts the miss for the filter
        return NearRangeResult(ground, empty_labels(shape, self.labels_config, status, reason), disparity,
                               None, timings)

    def process(self, frame: Frame) -> NearRangeResult:
        timings: dict[str, float] = {}
        left = getattr(frame, "left", None)
        shape = left.shape[:2] if isinstance(left, np.ndarray) and left.ndim >= 2 else (0, 0)
        try:
            if frame.right is None:
                raise InputError("is mono; the near-range labels need a stereo pair", subject=f"frame {frame.index}")
            t0 = time.perf_counter()
            if not frame.rectified:
                r = self._rectifier
                if r is None or r.left_info is not frame.left_info or r.right_info is not frame.right_info:
                    r = self._rectifier = StereoRectifier(frame.left_info, frame.right_info)
                frame = r.rectify_frame(frame)
            if frame.left_info is None or frame.right_info is None:
                from perception.errors import CalibrationError

                raise CalibrationError("camera_info is missing", subject=f"frame {frame.index}",
                                       hint="a stereo frame needs both camera_info for triangulation")
            geo = stereo_geometry(frame.left_info, frame.right_info)
            timings["rectify"] = (time.perf_counter() - t0) * 1e3
            disp = compute_disparity(frame.left, frame.right, self.disparity_config)
            timings["disparity"] = disp.ms
            if disp.all_invalid:
                return self._failed(shape, GroundStatus.NO_POINTS, f"no valid disparity: {disp.reason}", timings,
                                    disp)
            t0 = time.perf_counter()
            points = disparity_to_points(disp.disparity, frame.left_info, geo.baseline, doffs=geo.doffs)
            timings["points"] = (time.perf_counter() - t0) * 1e3
        except PerceptionError as err:
            return self._failed(shape, GroundStatus.INVALID_INPUT, str(err), timings)
        conf = np.where(disp.measured, disp.confidence, np.float32(0.0))  # filled pixels are guesses
        ground, labels = self.process_points(points, conf, frame.left_info, timings)
        return NearRangeResult(ground, labels, disp, points if self.keep_points else None, timings)

    def process_points(self, points: np.ndarray, confidence=None, camera=None,
                       timings: dict[str, float] | None = None) -> tuple[GroundEstimate, NearLabels]:
        """Ground + labels of an organised HxWx3 cloud (never raises for bad data)."""
        timings = {} if timings is None else timings
        ground = self.estimator.update(points, confidence, camera=camera)
        timings["ground"] = ground.ms
        labels = label_near_range(points, ground, self.labels_config, confidence, camera)
        timings["labels"] = labels.ms
        return ground, labels
