"""Object footprints stamped into a published cost grid: dynamic obstacles (detections) for this frame only.

Detected road users move, so they are not accumulated as terrain evidence (which would leave a trail behind a
walking pedestrian until it decays): each frame's footprints are painted onto that frame's fused grid, at
`value` (OccupancyGrid 0..100; 100 = lethal, Nav2 254), keeping the higher cost where a cell already has one.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from perception.frame import Pose
from perception.mapping.terrain_map import MapGrid

_SHIFT = 4  # fixed-point bits for cv2.fillPoly: sub-cell vertex positions


def paint_footprints(grid: MapGrid, polygons, pose: Pose | None = None, value: int = 100) -> MapGrid:
    """`grid` with every polygon (each K x 2 (x, y) in base_link, m) filled at `value`.

    `pose`: odom <- base_link (None: the robot at the grid frame's origin). Cells are filled where the polygon
    covers their centre, and always the cell of the polygon's centre, so an object smaller than a cell shows.

    >>> g = MapGrid(np.full((4, 4), -1, np.int8), 1.0, (0.0, 0.0, 0.0))
    >>> paint_footprints(g, [np.array([[1.2, 1.2], [2.8, 1.2], [2.8, 1.8], [1.2, 1.8]])]).data[1].tolist()
    [-1, 100, 100, -1]
    """
    polygons = [np.asarray(p, np.float64).reshape(-1, 2) for p in polygons]
    if not polygons:
        return grid
    if not 0 <= value <= 100:
        raise ValueError(f"footprint value {value} is not an OccupancyGrid cost (0..100)")
    M = pose.matrix() if pose is not None else np.eye(4)
    x0, y0, yaw = grid.origin_xy_yaw
    c, s = math.cos(yaw), math.sin(yaw)
    mask = np.zeros(grid.data.shape, np.uint8)
    h, w = mask.shape
    scale = (1 << _SHIFT) / grid.resolution
    pts = []
    for poly in polygons:
        if not np.isfinite(poly).all():
            continue
        odom = poly @ M[:2, :2].T + M[:2, 3]
        dx, dy = odom[:, 0] - x0, odom[:, 1] - y0
        cell = np.stack([c * dx + s * dy, -s * dx + c * dy], 1)  # grid frame, m
        pts.append(np.round(cell * scale - (1 << (_SHIFT - 1))).astype(np.int32))  # cell centres at .5
        col, row = np.floor(cell.mean(0) / grid.resolution).astype(int)
        if 0 <= row < h and 0 <= col < w:
            mask[row, col] = 1  # the cell of its centre: an object smaller than a cell still shows
    if not pts:
        return grid
    cv2.fillPoly(mask, pts, 1, lineType=cv2.LINE_8, shift=_SHIFT)
    data = grid.data.copy()
    hit = mask.astype(bool)
    data[hit] = np.maximum(data[hit], np.int8(value))
    return MapGrid(data, grid.resolution, grid.origin_xy_yaw)


__all__ = ["paint_footprints"]
