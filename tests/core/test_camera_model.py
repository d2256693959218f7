"""CameraInfo: ROS camera_calibration YAML round trips, derived intrinsics, and refusal of bad calibrations."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from perception.camera import CameraInfo, stereo_baseline
from perception.errors import CalibrationError

# As written by ROS camera_calibration (cameracalibrator.py) for a 640x480 camera.
ROS_YAML = """\
image_width: 640
image_height: 480
camera_name: narrow_stereo/left
camera_matrix:
  rows: 3
  cols: 3
  data: [610.2, 0.0, 318.4, 0.0, 611.9, 242.7, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.31, 0.11, 0.0007, -0.0002, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [0.9999, -0.0087, 0.0072, 0.0087, 0.9999, -0.0013, -0.0072, 0.0014, 0.9999]
projection_matrix:
  rows: 3
  cols: 4
  data: [580.1, 0.0, 321.5, -69.61, 0.0, 580.1, 240.2, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def test_ros_yaml_is_read_as_written_by_camera_calibration(tmp_path):
    path = tmp_path / "right.yaml"
    path.write_text(ROS_YAML)
    cam = CameraInfo.from_yaml(path)
    assert cam.size == (640, 480)
    assert cam.name == "narrow_stereo/left"
    assert cam.K[0, 0] == pytest.approx(610.2)
    assert cam.fx == pytest.approx(580.1)  # rectified intrinsics come from P
    assert cam.D.shape == (5,)
    assert not cam.is_rectified
    assert stereo_baseline(cam) == pytest.approx(69.61 / 580.1)


def test_yaml_round_trip_keeps_every_matrix(tmp_path):
    path = tmp_path / "in.yaml"
    path.write_text(ROS_YAML)
    cam = CameraInfo.from_yaml(path)
    cam.to_yaml(tmp_path / "out.yaml")
    again = CameraInfo.from_yaml(tmp_path / "out.yaml")
    for name in ("K", "D", "R", "P"):
        np.testing.assert_array_equal(getattr(cam, name), getattr(again, name))
    assert yaml.safe_load((tmp_path / "out.yaml").read_text())["camera_matrix"]["rows"] == 3


def test_ideal_camera_is_rectified_and_scales():
    cam = CameraInfo.from_intrinsics(640, 480, fx=500.0, fy=500.0, cx=320.0, cy=240.0)
    assert cam.is_rectified
    half = cam.scaled(320, 240)
    assert (half.fx, half.cx, half.cy) == (250.0, 160.0, 120.0)


def test_left_camera_has_no_baseline():
    left = CameraInfo.from_intrinsics(640, 480, fx=500.0, fy=500.0, cx=320.0, cy=240.0)
    with pytest.raises(CalibrationError, match="RIGHT camera"):
        stereo_baseline(left)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("camera_matrix"), "missing 'camera_matrix'"),
        (lambda d: d["camera_matrix"].update(data=[1.0, 2.0]), "K has 2 values"),
        (lambda d: d["projection_matrix"]["data"].__setitem__(0, float("nan")), "P contains NaN"),
        (lambda d: d.update(distortion_model="fisheye62"), "unknown distortion model"),
        (lambda d: d.update(image_width=0), "not positive"),
    ],
)
def test_bad_calibrations_are_refused_with_the_reason(tmp_path, edit, message):
    data = yaml.safe_load(ROS_YAML)
    edit(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CalibrationError, match=message) as err:
        CameraInfo.from_yaml(path)
    assert str(path) in str(err.value)


def test_missing_calibration_file_says_what_to_do(tmp_path):
    with pytest.raises(CalibrationError, match="perception calibrate stereo"):
        CameraInfo.from_yaml(tmp_path / "nope.yaml")
