"""The scene stage in the pipeline: per-pixel classes, and their costs into the fused map.

Scene classes become map evidence through the class-to-cost table (`SceneCostTable`, Nav2 costs per class name):
every `map_step`-th pixel below the horizon whose ray meets the ground plane within `map_range_m` is one
observation at that ground point, as a LAGR class distribution: cost c (0..254) -> p(obstacle) = c / 254, the rest
ground (super-obstacle / super-ground at the ends); NO_INFORMATION pixels (sky, unknown names, low confidence) add
nothing. The weight `map_weight` x the pixel's confidence sets how much a scene pixel counts against a stereo or
long-range observation of the same place.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.params import describe_config, param, validate_config
from perception.terrain.bands import pixels_to_ground

NO_INFORMATION = 255


@dataclass(frozen=True)
class SceneStageConfig:
    """Parameters of the scene stage; each has a description and a range, checked on creation."""

    enabled: bool = param(True, "run scene parsing (scene/class_mask, scene/color_mask, fused map)")
    backend: str = param("auto", "inference backend", choices=("auto", "onnxruntime", "tensorrt"))
    threads: int = param(1, "ONNX Runtime intra-op threads (0: one per core; 1, measured best: the pipeline "
                            "already runs two frames on two threads, docs/performance.md)", 0, 64)
    to_map: bool = param(True, "add scene costs to the fused map (map/costmap)")
    map_range_m: float = param(30.0, "farthest ground distance a scene pixel is mapped to, m", 1.0, 200.0)
    map_step: int = param(8, "every n-th pixel (rows and columns) goes to the map", 1, 64)
    map_weight: float = param(0.5, "weight of one scene pixel in the map, times its confidence", 0.0, 100.0)

    def __post_init__(self) -> None:
        validate_config(self)

    @classmethod
    def describe(cls) -> dict[str, dict]:
        return describe_config(cls)


def cost_to_classes(cost: np.ndarray) -> np.ndarray:
    """Nav2 costs (0..254) -> N x 5 LAGR class distributions (super-ground .. super-obstacle).

    >>> cost_to_classes(np.array([0, 254])).round(2).tolist()
    [[1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]]
    """
    p = np.clip(np.asarray(cost, np.float32) / 254.0, 0.0, 1.0)
    out = np.zeros((len(p), 5), np.float32)
    out[:, 0] = (1 - p) ** 2  # clearly free -> super-ground
    out[:, 1] = (1 - p) * p
    out[:, 3] = p * (1 - p)
    out[:, 4] = p ** 2
    return out / out.sum(1, keepdims=True)


def scene_observations(scene, ground, camera, table, config: SceneStageConfig):
    """(ground points N x 2 forward/left from the camera foot, class distributions N x 5, weights N)."""
    empty = np.zeros((0, 2)), np.zeros((0, 5), np.float32), np.zeros(0, np.float32)
    if scene is None or ground is None or not ground.ok:
        return empty
    s = config.map_step
    mask = scene.class_mask[s // 2::s, s // 2::s]
    conf = scene.confidence[s // 2::s, s // 2::s]
    vs, us = np.mgrid[s // 2: scene.class_mask.shape[0]: s, s // 2: scene.class_mask.shape[1]: s]
    cost = table.cost_image(mask, scene.class_names, conf).ravel()
    keep = cost != NO_INFORMATION
    if not keep.any():
        return empty
    uv = np.stack([us.ravel()[keep], vs.ravel()[keep]], 1).astype(np.float64)
    xy = pixels_to_ground(uv, ground.primary.normal, ground.primary.d, camera)
    ok = np.isfinite(xy).all(1) & (xy[:, 0] <= config.map_range_m)
    return xy[ok], cost_to_classes(cost[keep][ok]), conf.ravel()[keep][ok] * np.float32(config.map_weight)
