"""Detection footprints stamped into the fused grid, and the camera's ground frame they are placed with."""
from __future__ import annotations

import math

import numpy as np
import pytest

from perception.frame import Pose
from perception.mapping import MapGrid
from perception.mapping.footprints import paint_footprints
from perception.terrain.bands import ground_frame, pixels_to_ground


def square(cx: float, cy: float, half: float) -> np.ndarray:
    return np.array([[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half], [cx - half, cy + half]])


def test_a_footprint_lands_in_the_cells_it_covers_through_the_robot_pose():
    grid = MapGrid(np.zeros((20, 20), np.int8), 0.5, (-5.0, -5.0, 0.0))  # odom -5..5 m both ways
    yaw = math.pi / 2  # robot at odom (1, 2) facing +y: base_link x = odom y
    pose = Pose(np.array([1.0, 2.0, 0.0]), np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]))
    out = paint_footprints(grid, [square(2.0, 0.0, 0.4)], pose)  # 2 m ahead of the robot -> odom (1, 4)
    rows, cols = np.nonzero(out.data == 100)
    xs, ys = -5.0 + (cols + 0.5) * 0.5, -5.0 + (rows + 0.5) * 0.5
    assert len(rows) == 4  # a 0.8 m square on 0.5 m cells: the 2 x 2 cells whose centres it covers
    assert xs.mean() == pytest.approx(1.0) and ys.mean() == pytest.approx(4.0)
    assert (grid.data == 0).all()  # the input grid is not changed


def test_painting_keeps_higher_costs_and_skips_what_cannot_be_placed():
    data = np.full((10, 10), -1, np.int8)
    data[5, 5] = 100
    grid = MapGrid(data, 1.0, (0.0, 0.0, 0.0))
    out = paint_footprints(grid, [square(5.5, 5.5, 2.0), np.full((4, 2), np.nan)], value=60)
    assert out.data[5, 5] == 100 and out.data[4, 4] == 60 and out.data[0, 0] == -1
    far = paint_footprints(grid, [square(500.0, 500.0, 1.0)])  # outside the grid: nothing, no error
    assert (far.data == grid.data).all()
    tiny = paint_footprints(grid, [square(2.5, 7.5, 0.05)])  # smaller than a cell: its cell is still marked
    assert tiny.data[7, 2] == 100 and (tiny.data == 100).sum() == 2  # and the one that was there
    with pytest.raises(ValueError, match="0..100"):
        paint_footprints(grid, [square(1, 1, 1)], value=254)  # a Nav2 cost, not an OccupancyGrid one


def test_ground_frame_agrees_with_pixels_to_ground_for_a_pitched_camera():
    pitch = math.radians(8.0)  # looking down
    n = np.array([0.0, -math.cos(pitch), -math.sin(pitch)])  # up, in the optical frame (z looks down)
    height = 1.3
    T = ground_frame(n, height)
    camera = (500.0, 500.0, 320.0, 240.0, 640, 480)
    uv = np.array([[100.0, 400.0], [320.0, 300.0], [600.0, 470.0]])
    xy = pixels_to_ground(uv, n, height, camera)
    rays = np.stack([(uv[:, 0] - 320.0) / 500.0, (uv[:, 1] - 240.0) / 500.0, np.ones(3)], 1)
    t = -height / (rays @ n)
    points = rays * t[:, None]  # the ground points in the optical frame
    ground = points @ T[:3, :3].T + T[:3, 3]
    assert ground[:, :2] == pytest.approx(xy) and ground[:, 2] == pytest.approx(np.zeros(3), abs=1e-9)
    assert (T @ [0.0, 0.0, 0.0, 1.0])[2] == pytest.approx(height)  # the camera, at its height over its foot
    assert np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3)) and np.linalg.det(T[:3, :3]) == pytest.approx(1.0)
