"""Chessboard stereo calibration: exact on a synthetic board seen by a known pair, and on OpenCV's real pairs."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from perception.camera import CameraInfo, stereo_baseline
from perception.camera.calibrate import (
    board_points, calibrate_stereo, expand_images, parse_pattern, read_kalibr_camera,
)
from perception.cli import main
from perception.errors import CalibrationError, InputError

from .synthetic import K_LEFT, K_RIGHT, D_LEFT, SIZE, T_LR, ChessboardRenderer, board_poses

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synthetic_views():
    renderer = ChessboardRenderer(square=0.03)
    rng = np.random.default_rng(7)
    return [renderer.pair(rvec, tvec, rng) for rvec, tvec in board_poses(12, seed=1, square=0.03)]


def test_synthetic_board_recovers_the_known_camera_pair(synthetic_views):
    lefts, rights = [v[0] for v in synthetic_views], [v[1] for v in synthetic_views]
    cal = calibrate_stereo(lefts, rights, (9, 6), 0.03)
    assert len(cal.used) == 12 and not cal.rejected
    assert cal.rms < 0.2
    assert cal.left.K[0, 0] == pytest.approx(K_LEFT[0, 0], rel=3e-3)
    assert cal.right.K[1, 1] == pytest.approx(K_RIGHT[1, 1], rel=3e-3)
    assert cal.left.K[0, 2] == pytest.approx(K_LEFT[0, 2], abs=2.0)
    assert cal.baseline == pytest.approx(np.linalg.norm(T_LR), rel=3e-3)
    # distortion: undistorting points where boards were seen agrees with the true model within 1 px
    grid = np.stack(np.meshgrid(np.linspace(100, 540, 9), np.linspace(80, 400, 7)), -1).reshape(-1, 1, 2)
    truth = cv2.undistortPoints(grid.astype(np.float64), K_LEFT, D_LEFT, P=K_LEFT)
    est = cv2.undistortPoints(grid.astype(np.float64), cal.left.K, cal.left.D, P=K_LEFT)
    assert np.abs(truth - est).max() < 1.0
    # ROS camera_info contract: rectified pair with P_right[0,3] = -fx * B
    assert cal.right.P[0, 3] == pytest.approx(-cal.right.P[0, 0] * cal.baseline)
    assert stereo_baseline(cal.right) == pytest.approx(cal.baseline)
    np.testing.assert_allclose(cal.left.P[1], cal.right.P[1])


def test_pairs_without_the_board_are_refused_and_listed(synthetic_views):
    blank = np.full((SIZE[1], SIZE[0]), 128, np.uint8)
    lefts = [v[0] for v in synthetic_views[:7]] + [blank, synthetic_views[7][0]]
    rights = [v[1] for v in synthetic_views[:7]] + [synthetic_views[7][1], blank]
    cal = calibrate_stereo(lefts, rights, (9, 6), 0.03)
    assert len(cal.used) == 7
    reasons = [why for _, _, why in cal.rejected]
    assert reasons == ["9x6 board not found in the left image", "9x6 board not found in the right image"]
    assert cal.summary()["pairs_rejected"] == 2


def test_too_few_usable_pairs_fail_with_the_reasons(synthetic_views):
    blank = np.full((SIZE[1], SIZE[0]), 128, np.uint8)
    lefts = [v[0] for v in synthetic_views[:3]] + [blank]
    rights = [v[1] for v in synthetic_views[:3]] + [blank]
    with pytest.raises(CalibrationError, match=r"only 3 usable pairs, need at least 6.*not found in the both images"):
        calibrate_stereo(lefts, rights, (9, 6), 0.03)
    with pytest.raises(InputError, match="2 left but 1 right"):
        calibrate_stereo(lefts[:2], rights[:1])


def test_pattern_and_image_arguments_are_checked(tmp_path):
    assert parse_pattern("9x6") == (9, 6)
    for bad in ("9", "6x6", "axb", "1x5"):
        with pytest.raises(InputError):
            parse_pattern(bad)
    with pytest.raises(InputError, match="matches no file"):
        expand_images([str(tmp_path / "*.png")], "left")
    pts = board_points((9, 6), 0.02)
    assert pts.shape == (54, 3) and pts[1, 0] == pytest.approx(0.02) and pts[9, 1] == pytest.approx(0.02)


def test_cli_calibrates_opencv_sample_pairs_below_half_a_pixel(data_dir, tmp_path, capsys):
    folder = data_dir / "opencv_samples" / "chessboard_stereo_calib"
    if not folder.is_dir():
        pytest.skip("chessboard_stereo_calib not in PERCEPTION_DATA")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640), 128, np.uint8))
    other = tmp_path / "other_right.png"
    cv2.imwrite(str(other), cv2.imread(str(folder / "right01.jpg")))
    out = tmp_path / "cal"
    code = main(["calibrate", "stereo", "--left", str(folder / "left*.jpg"), str(blank),
                 "--right", str(folder / "right*.jpg"), str(other),
                 "--pattern", "9x6", "--square", "0.025", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["rms_px"] <= 0.5
    assert result["pairs_used"] == 13 and result["pairs_rejected"] == 1
    assert result["rejected"][0]["left"].endswith("blank.png")
    assert "not found in the left image" in result["rejected"][0]["reason"]
    assert "blank.png" in captured.err  # the refusal is reported on stderr too
    left, right = CameraInfo.from_yaml(out / "left.yaml"), CameraInfo.from_yaml(out / "right.yaml")
    assert left.size == right.size == (640, 480)
    assert right.P[0, 3] == pytest.approx(-right.fx * result["baseline"])
    assert result["baseline"] == pytest.approx(3.33 * 0.025, rel=0.02)  # the rig's baseline is ~3.3 squares

    # the committed calibration is this same result (square = 1 unit there)
    committed = CameraInfo.from_yaml(REPO / "calibration" / "opencv_chessboard_right.yaml")
    assert committed.fx == pytest.approx(right.fx, rel=1e-3)
    assert stereo_baseline(committed) == pytest.approx(result["baseline"] / 0.025, rel=1e-3)


def test_kalibr_sensor_yaml_is_read(tmp_path):
    path = tmp_path / "cam0" / "sensor.yaml"
    path.parent.mkdir()
    path.write_text(
        "%YAML:1.0\nsensor_type: camera\nT_BS:\n  cols: 4\n  rows: 4\n  data: [1, 0, 0, 0.1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]\n"
        "resolution: [752, 480]\ncamera_model: pinhole\nintrinsics: [458.6, 457.3, 367.2, 248.4]\n"
        "distortion_model: radial-tangential\ndistortion_coefficients: [-0.28, 0.07, 0.0002, 0.00002]\n"
    )
    cam, T_BS = read_kalibr_camera(path)
    assert cam.size == (752, 480) and cam.distortion_model == "plumb_bob"
    assert cam.D.tolist() == pytest.approx([-0.28, 0.07, 0.0002, 0.00002, 0.0])
    assert cam.K[0, 0] == pytest.approx(458.6) and T_BS[0, 3] == pytest.approx(0.1)
    path.write_text(path.read_text().replace("radial-tangential", "omni"))
    with pytest.raises(CalibrationError, match="not supported"):
        read_kalibr_camera(path)
