"""Detections into the fused map: ground-plane footprints in base_link, with their extent.

Stereo measures the object's visible surface (`Detection2D.position`, left optical frame). The footprint is a
rectangle on the ground (base_link: x forward, y left): its near edge centred on the surface point, its width the
box's metric width (from the box and the range), its depth along the viewing ray the class's typical depth
(`CLASS_DEPTH`: what stereo cannot see, a prior; say so when it matters). `radius` is the circumscribed radius
about the footprint centre, for planners that take circles. Detections without a position are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# typical extent along the viewing ray behind the visible surface, m (a pedestrian's depth; a car seen from any
# side: between its width and length)
CLASS_DEPTH = {"pedestrian": 0.5, "person": 0.5, "cyclist": 1.2, "bicycle": 1.2, "car": 3.0, "truck": 5.0,
               "bus": 6.0}
DEFAULT_DEPTH = 1.0


@dataclass
class MapObstacle:
    x: float  # footprint centre, base_link, m
    y: float
    radius: float  # circumscribed radius, m
    polygon: np.ndarray  # 4 x 2 footprint corners (x, y), base_link, counter-clockwise
    class_id: str
    score: float
    track_id: str = ""
    velocity: tuple[float, float] | None = None  # base_link, relative to the vehicle, when tracked


def camera_to_base(points, T_base_camera) -> np.ndarray:
    """Nx3 points in the left optical frame -> base_link (4x4 T_base_camera = base_link <- camera)."""
    p = np.asarray(points, np.float64).reshape(-1, 3)
    T = np.asarray(T_base_camera, np.float64)
    return p @ T[:3, :3].T + T[:3, 3]


def footprint(surface_xy, width: float, depth: float, origin_xy=(0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """(centre, 4x2 corners) of a width x depth rectangle whose near edge is centred on `surface_xy`, its depth
    along the ray from `origin_xy` (the camera)."""
    s = np.asarray(surface_xy, np.float64)
    ray = s - np.asarray(origin_xy, np.float64)
    n = np.linalg.norm(ray)
    u = ray / n if n > 1e-9 else np.array([1.0, 0.0])
    lat = np.array([-u[1], u[0]])
    centre = s + u * depth / 2
    hw = width / 2
    corners = np.array([s - lat * hw, s + u * depth - lat * hw, s + u * depth + lat * hw, s + lat * hw])
    return centre, corners


def detections_to_map_obstacles(detections, T_base_camera, *, fx: float | None = None, tracks=None,
                                min_width: float = 0.3) -> list[MapObstacle]:
    """Map obstacles for the Detection2D list (with `position` from stereo ranging).

    `fx` (px) turns box widths into metres (without it the class's depth is used as width too); `tracks`
    (from Tracker.update) adds velocities by track id."""
    T = np.asarray(T_base_camera, np.float64)
    cam_origin = T[:2, 3]
    by_id = {str(t.track_id): t for t in (tracks or [])}
    out = []
    for det in detections:
        if det.position is None:
            continue
        depth = CLASS_DEPTH.get(det.class_id, DEFAULT_DEPTH)
        z = float(det.position[2])
        width = max(min_width, det.width * z / fx) if fx else depth
        s = camera_to_base([det.position], T)[0]
        centre, poly = footprint(s[:2], width, depth, cam_origin)
        radius = float(np.max(np.linalg.norm(poly - centre, axis=1)))
        t = by_id.get(str(det.track_id)) if det.track_id else None
        out.append(MapObstacle(float(centre[0]), float(centre[1]), radius, poly, det.class_id, float(det.score),
                               str(det.track_id), t.velocity if t is not None else None))
    return out
