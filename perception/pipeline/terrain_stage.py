"""The terrain stage of the pipeline: stereo points -> ground + near-range labels -> long-range classes -> map.

Map frames: observations are placed relative to the robot (`base_link`: x forward, y left) from the camera's foot
on the ground plane, offset by `MapOutputConfig.camera_x_m` / `camera_y_m` (where the camera's foot is in
base_link; yaw assumed aligned), and into the fixed frame with the frame's pose (odom <- base_link). A source
without poses (a bag without odometry) maps everything around a robot standing still at the odom origin.

The map takes the stereo labels of the near range (weight `stereo_weight` x label confidence) and the long-range
classes of every band window with a ground point (weight 1 x the classifier's learning confidence; the map itself
decays evidence with distance and time, `MapConfig`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.frame import Pose
from perception.mapping import MapConfig, MapGrid, TerrainMap
from perception.params import describe_config, param, validate_config
from perception.stereo.ground import GroundConfig, GroundEstimator
from perception.stereo.labels import label_near_range
from perception.stereo.windows import UNKNOWN, LabelConfig
from perception.terrain.bands import BandConfig, pixels_to_ground
from perception.terrain.classifier import ClassifierConfig
from perception.terrain.long_range import LongRange, LongRangeConfig, map_observations


@dataclass(frozen=True)
class MapOutputConfig:
    """The published cost grids and where the camera sits on the robot."""

    resolution_m: float = param(0.5, "cell size of the published cost grids, m", 0.05, 10.0)
    size_m: float = param(200.0, "side of the published square cost grids, centred on the robot, m", 5.0, 1000.0)
    camera_x_m: float = param(0.0, "forward position of the camera's foot in base_link, m", -50.0, 50.0)
    camera_y_m: float = param(0.0, "left position of the camera's foot in base_link, m", -50.0, 50.0)
    stereo_weight: float = param(4.0, "weight of a stereo-labelled window relative to a long-range one", 0.0, 100.0)
    long_range: bool = param(True, "add the long-range classes to the map (false: a stereo-only map)")

    def __post_init__(self) -> None:
        validate_config(self)

    @classmethod
    def describe(cls) -> dict[str, dict]:
        return describe_config(cls)


def near_observations(labels, ground, camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ground points (forward, left from the camera foot), label distributions and confidences of the labelled
    stereo windows (their centre pixels on the ground plane)."""
    win = labels.windows
    keep = win["class"] != UNKNOWN
    win = win[keep]
    if not win.size or ground is None or not ground.ok:
        return np.zeros((0, 2)), np.zeros((0, 5), np.float32), np.zeros(0, np.float32)
    wr, wc = labels.window
    uv = np.stack([win["u0"] + wc / 2.0, win["v0"] + wr / 2.0], 1)
    xy = pixels_to_ground(uv, ground.primary.normal, ground.primary.d, camera)
    return xy, win["probabilities"], win["confidence"]


class TerrainStage:
    """Ground, labels, long range and map for one camera stream (stateful: ground filter, classifier, map)."""

    def __init__(self, ground: GroundConfig, labels: LabelConfig, bands: BandConfig, terrain: LongRangeConfig,
                 classifier: ClassifierConfig, map_config: MapConfig, output: MapOutputConfig, *,
                 long_range: bool = True, model=None, default_weights=None) -> None:
        self.estimator = GroundEstimator(ground)
        self.labels_config = labels
        self.output = output
        self.long_range = LongRange(terrain, bands, classifier, model=model,
                                    default_weights=default_weights) if long_range else None
        self.map = TerrainMap(map_config)  # terrain/costmap: stereo + long range
        self.fused = TerrainMap(map_config)  # map/costmap: the same, plus scene and detections

    def close(self) -> None:
        if self.long_range is not None:
            self.long_range.close()

    def near(self, points: np.ndarray, confidence: np.ndarray, camera, fit=None):
        """Ground (smoothed over frames) and near-range labels; `fit`: `estimator.fit` of these points, when
        already computed."""
        ground = self.estimator.update(points, confidence, camera=camera, fit=fit)
        labels = label_near_range(points, ground, self.labels_config, confidence, camera)
        return ground, labels

    def update_map(self, pose: Pose | None, stamp_ns: int, camera, ground, labels, far,
                   extra=()) -> tuple[MapGrid, MapGrid]:
        """Add this frame's near and far observations to both maps and `extra` ((xy, probs, weights) from the
        camera foot: scene, detections) to the fused one; returns (terrain grid, fused grid) around the robot."""
        pose = pose if pose is not None else Pose(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))
        maps = (self.map, self.fused)
        for m in maps:
            m.set_pose(pose)
        out = self.output
        offset = np.array([out.camera_x_m, out.camera_y_m])
        batches = []
        xy, probs, conf = near_observations(labels, ground, camera)
        if len(xy):
            batches.append((xy, probs, conf * out.stereo_weight, 1.0, maps))
        if far is not None and far.ok and out.long_range:
            fxy, fprobs, fweights = map_observations(far)
            if len(fxy):
                batches.append((fxy, fprobs, fweights, far.confidence, maps))
        for xy, probs, weights in extra:
            if len(xy):
                batches.append((xy, probs, weights, 1.0, (self.fused,)))
        for xy, probs, weights, confidence, targets in batches:
            for m in targets:
                m.add_observations(xy + offset, probs, pose, weights, confidence, frame="base_link",
                                   stamp_ns=stamp_ns)
        x, y, _ = self.map.robot_xy_yaw
        return tuple(m.cost_grid(out.resolution_m, out.size_m, center_xy=(x, y)) for m in maps)
