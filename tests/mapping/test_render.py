"""Top-down map pictures: right size, obstacles where they are, unknown grey, the robot drawn, docs example."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from perception.mapping import MapConfig, TerrainMap
from perception.mapping.render import UNKNOWN_BGR, main, render_map, yaw_pose


@pytest.fixture()
def tmap():
    t = TerrainMap(MapConfig(range_scale_m=0.0))
    p = yaw_pose(0.0, 0.0, math.radians(90))  # facing +y
    xs, ys = np.meshgrid(np.arange(-10, 10, 0.1), np.arange(2, 40, 0.1))
    pts = np.column_stack([xs.ravel(), ys.ravel()])
    labels = np.where(np.hypot(pts[:, 0] - 5, pts[:, 1] - 30) < 2, 4, 1)
    t.add_observations(pts, labels, p)
    return t


def test_cost_picture_puts_things_where_they_are(tmap):
    img = render_map(tmap, size_m=100.0, resolution=0.5, pixels=200, ring_m=0)
    assert img.shape == (200, 200, 3) and img.dtype == np.uint8
    # 2 px per m, robot at the centre (100, 100), +y up: the obstacle at (5, 30) is at column 110, row 40
    b, g, r = (int(v) for v in img[40, 110])
    assert r > 200 and g < 60  # red: lethal
    b, g, r = (int(v) for v in img[60, 90])  # ground at (-5, 20)
    assert g > 150 and r < 100  # green: free
    assert tuple(int(v) for v in img[150, 100]) == UNKNOWN_BGR  # behind the robot: never seen
    assert tuple(int(v) for v in img[97, 100]) == (255, 255, 255)  # the robot, pointing up


def test_class_picture_and_the_docs_example(tmp_path, tmap):
    img = render_map(tmap, size_m=100.0, mode="class", pixels=150, label="class")
    assert img.shape == (150, 150, 3)
    with pytest.raises(ValueError):
        render_map(tmap, mode="height")
    out = tmp_path / "map.png"
    assert main(["--out", str(out)]) == 0
    picture = cv2.imread(str(out))
    assert picture.shape == (360, 724, 3)
    assert (picture != picture[0, 0]).any(axis=2).mean() > 0.2  # not blank
