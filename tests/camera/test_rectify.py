"""Rectification maths: derived R/P make epipolar lines horizontal; maps, cache, pass-through and refusals."""
from __future__ import annotations

import glob
from dataclasses import replace

import cv2
import numpy as np
import pytest

from perception.camera import CameraInfo, stereo_baseline
from perception.camera.calibrate import read_kalibr_camera
from perception.camera.rectify import (
    StereoRectifier, relative_pose, rectified_info, stereo_rectify, undistort_rectify_map, vertical_offsets,
)
from perception.errors import CalibrationError, InputError
from perception.frame import Frame, Header

from .synthetic import D_LEFT, D_RIGHT, K_LEFT, K_RIGHT, R_LR, SIZE, T_LR

FISHEYE_D_LEFT = np.array([0.05, -0.02, 0.004, -0.001])
FISHEYE_D_RIGHT = np.array([0.04, -0.01, 0.002, 0.0])
RATIONAL_D = np.array([-0.2, 0.05, 0.001, -0.001, 0.01, 0.02, -0.01, 0.005])


def raw_pair(model: str) -> tuple[CameraInfo, CameraInfo]:
    D1, D2 = {"plumb_bob": (D_LEFT, D_RIGHT), "rational_polynomial": (RATIONAL_D, RATIONAL_D * 0.9),
              "equidistant": (FISHEYE_D_LEFT, FISHEYE_D_RIGHT)}[model]
    w, h = SIZE
    left = CameraInfo(width=w, height=h, K=K_LEFT, D=D1, distortion_model=model, name="left")
    right = CameraInfo(width=w, height=h, K=K_RIGHT, D=D2, distortion_model=model, name="right")
    return left, right


def scene_points(n=300, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.uniform(1.0, 8.0, n)
    return np.column_stack([rng.uniform(-0.35, 0.35, n) * z, rng.uniform(-0.25, 0.25, n) * z, z])


def project(points, info: CameraInfo, R=np.eye(3), T=np.zeros(3)) -> np.ndarray:
    rvec = cv2.Rodrigues(np.asarray(R, np.float64))[0]
    pts = points.reshape(-1, 1, 3).astype(np.float64)
    if info.distortion_model == "equidistant":
        out, _ = cv2.fisheye.projectPoints(pts, rvec, np.asarray(T, np.float64), info.K, info.D)
    else:
        out, _ = cv2.projectPoints(pts, rvec, np.asarray(T, np.float64), info.K, info.D)
    return out.reshape(-1, 2)


def rectify_points(pix, info: CameraInfo) -> np.ndarray:
    pts = pix.reshape(-1, 1, 2).astype(np.float64)
    if info.distortion_model == "equidistant":
        return cv2.fisheye.undistortPoints(pts, info.K, info.D, R=info.R, P=info.P).reshape(-1, 2)
    return cv2.undistortPoints(pts, info.K, info.D, R=info.R, P=info.P).reshape(-1, 2)


@pytest.mark.parametrize("model", ["plumb_bob", "rational_polynomial", "equidistant"])
def test_stereo_rectify_makes_epipolar_lines_horizontal(model):
    left, right = raw_pair(model)
    pts = scene_points()
    raw_l, raw_r = project(pts, left), project(pts, right, R_LR, T_LR)
    assert np.median(np.abs(raw_l[:, 1] - raw_r[:, 1])) > 1.0  # raw rows disagree: the test can fail
    li, ri = stereo_rectify(left, right, R_LR, T_LR)
    rl, rr = rectify_points(raw_l, li), rectify_points(raw_r, ri)
    assert np.abs(rl[:, 1] - rr[:, 1]).max() < 1e-3
    # the horizontal offset is the disparity fx * B / Z, with P_right[0,3] = -fx * B
    assert ri.P[0, 3] == pytest.approx(-ri.P[0, 0] * np.linalg.norm(T_LR), rel=1e-9)
    assert stereo_baseline(ri) == pytest.approx(np.linalg.norm(T_LR), rel=1e-9)
    depth_l = (li.R @ pts.T)[2]  # depth in the rectified left frame
    np.testing.assert_allclose(rl[:, 0] - rr[:, 0], li.P[0, 0] * np.linalg.norm(T_LR) / depth_l, atol=2e-3)


@pytest.mark.parametrize("model", ["plumb_bob", "equidistant"])
def test_rectifier_maps_put_one_point_on_one_row(model):
    """End to end through cv2.remap: blobs drawn at the raw projections land on the same rectified row."""
    left, right = raw_pair(model)
    li, ri = stereo_rectify(left, right, R_LR, T_LR)
    rect = StereoRectifier(li, ri)
    pts = np.array([[-0.4, -0.3, 3.0], [0.5, 0.2, 4.0], [0.0, 0.0, 2.0], [0.3, -0.25, 5.0]])
    w, h = SIZE

    def blobs(pix):
        img = np.zeros((h, w), np.float32)
        ys, xs = np.mgrid[0:h, 0:w]
        for x, y in pix:
            img += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 2.0 ** 2))
        return (img * 250).astype(np.uint8)

    def centroids(img):
        n, labels, stats, cents = cv2.connectedComponentsWithStats((img > 20).astype(np.uint8))
        out = []
        for i in range(1, n):
            mask = labels == i
            wgt = img[mask].astype(np.float64)
            ys, xs = np.nonzero(mask)
            out.append(((xs * wgt).sum() / wgt.sum(), (ys * wgt).sum() / wgt.sum()))
        return np.array(sorted(out))

    raw_l, raw_r = project(pts, left), project(pts, right, R_LR, T_LR)
    out_l, out_r = rect.rectify(blobs(raw_l), blobs(raw_r))
    cl, cr = centroids(out_l), centroids(out_r)
    assert len(cl) == len(cr) == len(pts)
    # sorted by x: same order in both images since all points are in front
    assert np.abs(cl[:, 1] - cr[:, 1]).max() < 0.1
    expected = rectify_points(raw_l, li)
    assert np.abs(np.sort(expected[:, 0]) - cl[:, 0]).max() < 0.1


def test_maps_are_computed_once_per_pair_and_size():
    left, right = raw_pair("plumb_bob")
    li, ri = stereo_rectify(left, right, R_LR, T_LR)
    a, b = StereoRectifier(li, ri), StereoRectifier(li, ri)
    assert a.maps() is b.maps()
    scaled = StereoRectifier(li.scaled(320, 240), ri.scaled(320, 240))
    assert scaled.maps() is not a.maps()
    assert scaled.maps()[0][0].shape[:2] == (240, 320)
    assert undistort_rectify_map(li)[0].shape[:2] == (SIZE[1], SIZE[0])


def test_rectified_inputs_pass_through_untouched():
    left = CameraInfo.from_intrinsics(64, 48, fx=50.0, fy=50.0, cx=32.0, cy=24.0, name="left")
    right = CameraInfo.from_intrinsics(64, 48, fx=50.0, fy=50.0, cx=32.0, cy=24.0, baseline=0.1, name="right")
    rect = StereoRectifier(left, right)
    img_l, img_r = np.zeros((48, 64), np.uint8), np.ones((48, 64), np.uint8)
    out_l, out_r = rect.rectify(img_l, img_r)
    assert rect.passthrough and out_l is img_l and out_r is img_r
    assert rect.baseline == pytest.approx(0.1)


def test_rectify_frame_returns_rectified_images_and_camera_info():
    left, right = raw_pair("plumb_bob")
    li, ri = stereo_rectify(left, right, R_LR, T_LR)
    rect = StereoRectifier(li, ri)
    frame = Frame(Header(5, "left_camera_optical_frame"), np.full((480, 640), 100, np.uint8),
                  np.full((480, 640), 100, np.uint8), li, ri, rectified=False)
    out = rect.rectify_frame(frame)
    assert out.rectified and out.header == frame.header
    assert out.left_info.is_rectified and out.right_info.is_rectified
    assert stereo_baseline(out.right_info) == pytest.approx(np.linalg.norm(T_LR))
    assert rect.rectify_frame(out) is out  # already rectified: untouched
    assert rectified_info(li).K[0, 0] == pytest.approx(li.P[0, 0])


def test_missing_or_inconsistent_calibration_is_refused_with_a_hint():
    left, right = raw_pair("plumb_bob")
    li, ri = stereo_rectify(left, right, R_LR, T_LR)
    with pytest.raises(CalibrationError, match=r"left camera: camera_info is missing.*calibrate stereo"):
        StereoRectifier(None, ri)
    with pytest.raises(CalibrationError, match="right camera: camera_info is missing"):
        StereoRectifier(li, None)
    with pytest.raises(CalibrationError, match="monocular calibrations.*calibrate stereo"):
        StereoRectifier(left, right)  # raw K/D only, no stereo R/P
    with pytest.raises(CalibrationError, match="second row"):
        StereoRectifier(li, replace(ri, P=ri.P + np.array([[0, 0, 0, 0], [0, 0, 5.0, 0], [0, 0, 0, 0]])))
    with pytest.raises(CalibrationError, match="swap"):
        stereo_rectify(left, right, R_LR, -T_LR)
    with pytest.raises(CalibrationError, match="4 coefficients"):
        StereoRectifier(replace(li, distortion_model="equidistant"), ri)


def test_image_size_must_match_camera_info():
    left, right = raw_pair("plumb_bob")
    rect = StereoRectifier(*stereo_rectify(left, right, R_LR, T_LR))
    good = np.zeros((480, 640), np.uint8)
    with pytest.raises(InputError, match=r"right image: is 320x240 but camera_info 'right' is for 640x480.*scaled"):
        rect.rectify(good, np.zeros((240, 320), np.uint8))
    with pytest.raises(InputError, match="left image"):
        rect.rectify(np.zeros((480, 641), np.uint8), good)


def test_relative_pose_from_body_extrinsics():
    T_BL = np.eye(4)
    T_BR = np.eye(4)
    T_BR[:3, :3] = cv2.Rodrigues(np.array([0.0, 0.0, 0.1]))[0]
    T_BR[:3, 3] = [0.2, 0.0, 0.0]
    R, T = relative_pose(T_BL, T_BR)
    p_left = np.array([1.0, 2.0, 3.0])
    p_body = p_left  # T_BL is identity
    p_right = np.linalg.inv(T_BR) @ np.append(p_body, 1.0)
    np.testing.assert_allclose(R @ p_left + T, p_right[:3], atol=1e-12)


def test_euroc_pairs_rectify_to_sub_half_pixel_vertical_offset(data_dir):
    """EuRoC cam0/cam1 rectified from sensor.yaml: matched features lie on the same row (median < 0.5 px)."""
    mav0 = data_dir / "euroc_micro" / "mav0"
    if not (mav0 / "cam0" / "sensor.yaml").is_file():
        pytest.skip("euroc_micro not in PERCEPTION_DATA")
    left, T_BL = read_kalibr_camera(mav0 / "cam0" / "sensor.yaml")
    right, T_BR = read_kalibr_camera(mav0 / "cam1" / "sensor.yaml")
    R, T = relative_pose(T_BL, T_BR)
    assert np.linalg.norm(T) == pytest.approx(0.110, abs=0.001)
    rect = StereoRectifier(*stereo_rectify(left, right, R, T))
    lefts = sorted(glob.glob(str(mav0 / "cam0" / "data" / "*.png")))[::8]
    raw, rectified = [], []
    for path in lefts:
        img_l = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        img_r = cv2.imread(path.replace("cam0", "cam1"), cv2.IMREAD_GRAYSCALE)
        raw.append(vertical_offsets(img_l, img_r))
        rectified.append(vertical_offsets(*rect.rectify(img_l, img_r)))
    raw, rectified = np.concatenate(raw), np.concatenate(rectified)
    assert rectified.size > 500
    assert np.median(raw) > 5.0  # raw images are far from row-aligned: the check can fail
    assert np.median(rectified) < 0.5


def test_euroc_rectification_matches_the_camera_info_in_the_bag(data_dir):
    """R and P derived from sensor.yaml equal those recorded in euroc_stereo_bag's camera_info."""
    bag = data_dir / "euroc_stereo_bag"
    mav0 = data_dir / "euroc_micro" / "mav0"
    if not bag.is_dir() or not mav0.is_dir():
        pytest.skip("euroc data not in PERCEPTION_DATA")
    from rosbags.highlevel import AnyReader

    left, T_BL = read_kalibr_camera(mav0 / "cam0" / "sensor.yaml")
    right, T_BR = read_kalibr_camera(mav0 / "cam1" / "sensor.yaml")
    ours = dict(zip(("left", "right"), stereo_rectify(left, right, *relative_pose(T_BL, T_BR))))
    recorded = {}
    with AnyReader([bag]) as reader:
        conns = [c for c in reader.connections if c.topic.endswith("camera_info")]
        for conn, _, raw in reader.messages(connections=conns):
            side = conn.topic.split("/")[-2]
            if side not in recorded:
                recorded[side] = reader.deserialize(raw, conn.msgtype)
            if len(recorded) == 2:
                break
    assert set(recorded) == {"left", "right"}
    for side, msg in recorded.items():
        np.testing.assert_allclose(ours[side].R, np.asarray(msg.r).reshape(3, 3), atol=1e-5)
        np.testing.assert_allclose(ours[side].P, np.asarray(msg.p).reshape(3, 4), rtol=1e-5, atol=1e-3)
