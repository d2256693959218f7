"""Stereo rectification: raw image pair + ROS camera_info -> row-aligned pair, and deriving R/P for a raw pair.

`StereoRectifier(left_info, right_info)` builds the cv2.initUndistortRectifyMap look-up maps once (cached
per camera pair and image size, so a node or a replay that rebuilds the rectifier pays once) and
`rectify(left, right)` remaps raw images. When both camera_info already describe rectified images (no
distortion, identity R, P == K), it passes the images through untouched.

Distortion models: plumb_bob and rational_polynomial (cv2.initUndistortRectifyMap), equidistant (fisheye,
cv2.fisheye.initUndistortRectifyMap, 4 coefficients).

`stereo_rectify(left, right, R, T)` computes the rectification rotations R and projections P of a raw pair
from intrinsics and extrinsics (cv2.stereoRectify, zero disparity at infinity), as ROS camera_calibration
writes them: P_right[0,3] = -fx * baseline.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

import cv2
import numpy as np

from perception.camera.model import CameraInfo, stereo_baseline
from perception.errors import CalibrationError, InputError

_MAP_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()
_MAP_CACHE_SIZE = 8
FISHEYE = "equidistant"


def _info_key(info: CameraInfo) -> tuple:
    return (info.width, info.height, info.distortion_model, info.K.tobytes(), info.D.tobytes(),
            info.R.tobytes(), info.P.tobytes())


def _check_distortion(info: CameraInfo, side: str) -> None:
    if info.distortion_model == FISHEYE and info.D.size != 4:
        raise CalibrationError(
            f"equidistant (fisheye) distortion needs 4 coefficients, got {info.D.size}",
            subject=f"{side} camera_info '{info.name}'", hint="check distortion_coefficients in the YAML",
        )
    if info.distortion_model != FISHEYE and info.D.size not in (0, 4, 5, 8, 12, 14):
        raise CalibrationError(
            f"{info.D.size} distortion coefficients do not fit model '{info.distortion_model}'",
            subject=f"{side} camera_info '{info.name}'", hint="plumb_bob has 5, rational_polynomial 8",
        )


def undistort_rectify_map(info: CameraInfo) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps (fixed point, CV_16SC2 + CV_16UC1) from the rectified image of `info` to its raw image."""
    _check_distortion(info, "")
    if info.distortion_model == FISHEYE:
        return cv2.fisheye.initUndistortRectifyMap(info.K, info.D.reshape(4, 1), info.R, info.P, info.size,
                                                   cv2.CV_16SC2)
    D = info.D if info.D.size else np.zeros(5)
    return cv2.initUndistortRectifyMap(info.K, D, info.R, info.P, info.size, cv2.CV_16SC2)


def _cached_maps(left: CameraInfo, right: CameraInfo):
    key = (_info_key(left), _info_key(right))
    maps = _MAP_CACHE.get(key)
    if maps is None:
        maps = (undistort_rectify_map(left), undistort_rectify_map(right))
        _MAP_CACHE[key] = maps
        while len(_MAP_CACHE) > _MAP_CACHE_SIZE:
            _MAP_CACHE.popitem(last=False)
    else:
        _MAP_CACHE.move_to_end(key)
    return maps


def rectified_info(info: CameraInfo) -> CameraInfo:
    """The camera_info of the rectified image: K = P[:, :3], no distortion, identity R, same P."""
    return replace(info, K=info.P[:, :3].copy(), D=np.zeros(5), R=np.eye(3), distortion_model="plumb_bob")


class StereoRectifier:
    """Rectifies raw stereo pairs with the R/P of their camera_info (ROS image_proc semantics).

    Raises CalibrationError at construction when a camera_info is missing or the two do not form a
    rectified stereo calibration; `rectify` raises InputError when an image does not match its camera_info.
    """

    def __init__(self, left_info: CameraInfo | None, right_info: CameraInfo | None, *,
                 interpolation: int = cv2.INTER_LINEAR):
        for side, info in (("left", left_info), ("right", right_info)):
            if info is None:
                raise CalibrationError(
                    "camera_info is missing", subject=f"{side} camera",
                    hint="publish {0}/camera_info, or run `perception calibrate stereo` and pass the {0}.yaml".format(side),
                )
            if not isinstance(info, CameraInfo):
                raise CalibrationError(f"is a {type(info).__name__}, not a CameraInfo", subject=f"{side} camera_info")
            _check_distortion(info, side)
        if left_info.size != right_info.size:
            raise CalibrationError(
                f"left is {left_info.width}x{left_info.height} but right is {right_info.width}x{right_info.height}",
                subject="stereo camera_info", hint="both cameras of a pair must be calibrated at the same resolution",
            )
        if right_info.P[0, 3] == 0 and left_info.P[0, 3] == 0:
            raise CalibrationError(
                "right camera_info has no stereo baseline (P[0,3] = 0): these are two monocular calibrations",
                subject=f"camera_info '{right_info.name}'",
                hint="run `perception calibrate stereo` to get a stereo calibration with rectification R and P",
            )
        stereo_baseline(right_info)  # raises with a hint when P[0,3] has the wrong sign (cameras swapped?)
        if not np.allclose(left_info.P[1, :3], right_info.P[1, :3], rtol=1e-6, atol=1e-6):
            raise CalibrationError(
                "left and right projection matrices differ in their second row (fy, cy), so rectified rows "
                "would not align", subject=f"camera_info '{left_info.name}' / '{right_info.name}'",
                hint="use the left/right YAMLs of ONE stereo calibration",
            )
        self.left_info = left_info
        self.right_info = right_info
        self.interpolation = interpolation
        self.passthrough = left_info.is_rectified and right_info.is_rectified

    @property
    def baseline(self) -> float:
        """Baseline in metres (from the right camera's P)."""
        return stereo_baseline(self.right_info)

    @property
    def rectified_infos(self) -> tuple[CameraInfo, CameraInfo]:
        """camera_info of the rectified left and right images (what disparity and triangulation use)."""
        return rectified_info(self.left_info), rectified_info(self.right_info)

    def maps(self):
        """((left map1, map2), (right map1, map2)) for cv2.remap; computed once per camera pair and size."""
        return _cached_maps(self.left_info, self.right_info)

    def _check(self, img, info: CameraInfo, side: str) -> None:
        if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
            raise InputError("is not an HxW or HxWxC numpy image", subject=f"{side} image")
        h, w = img.shape[:2]
        if (w, h) != info.size:
            raise InputError(
                f"is {w}x{h} but camera_info '{info.name}' is for {info.width}x{info.height}",
                subject=f"{side} image",
                hint=f"pass the camera_info of this resolution (CameraInfo.scaled({w}, {h}) if the stream is resized)",
            )

    def rectify(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rectified (left, right); the inputs themselves when the camera_info say they are rectified already."""
        self._check(left, self.left_info, "left")
        self._check(right, self.right_info, "right")
        if self.passthrough:
            return left, right
        (l1, l2), (r1, r2) = self.maps()
        return (cv2.remap(left, l1, l2, self.interpolation, borderMode=cv2.BORDER_CONSTANT),
                cv2.remap(right, r1, r2, self.interpolation, borderMode=cv2.BORDER_CONSTANT))

    def rectify_frame(self, frame):
        """A perception.frame.Frame with rectified images and camera_info; frames marked rectified pass through."""
        if frame.rectified or frame.right is None:
            return frame
        left, right = self.rectify(frame.left, frame.right)
        li, ri = self.rectified_infos
        return replace(frame, left=left, right=right, left_info=li, right_info=ri, rectified=True)


def relative_pose(T_body_left: np.ndarray, T_body_right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, T) taking left-camera coordinates to right-camera coordinates (x_r = R x_l + T, OpenCV's
    stereoCalibrate convention) from the two sensor->body extrinsics T_BS (4x4: p_body = T_BS p_sensor)."""
    Tl = np.asarray(T_body_left, dtype=np.float64).reshape(4, 4)
    Tr = np.asarray(T_body_right, dtype=np.float64).reshape(4, 4)
    T_rl = np.linalg.inv(Tr) @ Tl
    return T_rl[:3, :3].copy(), T_rl[:3, 3].copy()


def stereo_rectify(left: CameraInfo, right: CameraInfo, R: np.ndarray, T: np.ndarray, *,
                   alpha: float = 0.0) -> tuple[CameraInfo, CameraInfo]:
    """The pair's camera_info with rectification R and projection P filled in (cv2.stereoRectify).

    `left`/`right` carry raw intrinsics K, D (any R/P they have is ignored); R, T take left-camera
    coordinates to right-camera coordinates (x_r = R x_l + T), T in metres. Zero disparity at infinity
    (the principal points coincide); `alpha` 0 keeps only valid pixels, 1 keeps every source pixel
    (plumb_bob / rational_polynomial; for fisheye it is the `balance`). Returns (left, right) with
    P_right[0,3] = -fx * baseline.
    """
    _check_distortion(left, "left")
    _check_distortion(right, "right")
    if left.size != right.size:
        raise CalibrationError("left and right images differ in size", subject="stereo_rectify")
    if (left.distortion_model == FISHEYE) != (right.distortion_model == FISHEYE):
        raise CalibrationError("one camera is fisheye (equidistant) and the other is not", subject="stereo_rectify",
                               hint="calibrate both cameras with the same distortion model")
    R = np.asarray(R, dtype=np.float64).reshape(3, 3)
    T = np.asarray(T, dtype=np.float64).reshape(3, 1)
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or not np.all(np.isfinite(T)):
        raise CalibrationError("R is not a rotation or T is not finite", subject="stereo extrinsics")
    if abs(T[0, 0]) < max(abs(T[1, 0]), abs(T[2, 0])):
        raise CalibrationError(
            f"the baseline T = {T.ravel().round(4).tolist()} is not mostly horizontal",
            subject="stereo extrinsics", hint="only horizontal stereo pairs are supported",
        )
    if T[0, 0] > 0:
        raise CalibrationError(
            "the 'right' camera is on the left of the 'left' camera (T[0] > 0)", subject="stereo extrinsics",
            hint="swap the left and right images / camera_info",
        )
    size = left.size
    if left.distortion_model == FISHEYE:
        R1, R2, P1, P2, _Q = cv2.fisheye.stereoRectify(
            left.K, left.D.reshape(4, 1), right.K, right.D.reshape(4, 1), size, R, T,
            flags=cv2.CALIB_ZERO_DISPARITY, newImageSize=size, balance=float(alpha), fov_scale=1.0,
        )
    else:
        D1 = left.D if left.D.size else np.zeros(5)
        D2 = right.D if right.D.size else np.zeros(5)
        R1, R2, P1, P2, _Q, _roi1, _roi2 = cv2.stereoRectify(
            left.K, D1, right.K, D2, size, R, T, flags=cv2.CALIB_ZERO_DISPARITY, alpha=float(alpha),
        )
    return replace(left, R=R1, P=P1), replace(right, R=R2, P=P2)


def vertical_offsets(left: np.ndarray, right: np.ndarray, *, ratio: float = 0.75,
                     max_features: int = 2000) -> np.ndarray:
    """|y_left - y_right| (px) of feature matches between two rectified images: ~0 for a good rectification.

    SIFT features, Lowe's ratio test, then RANSAC on the fundamental matrix (1 px) to drop wrong matches
    without assuming the images are rectified. Returns an empty array when too few matches survive.
    """
    def gray(img):
        img = np.asarray(img)
        if img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        return img if img.dtype == np.uint8 else cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX, cv2.CV_8U)

    sift = cv2.SIFT_create(nfeatures=max_features)
    kl, dl = sift.detectAndCompute(gray(left), None)
    kr, dr = sift.detectAndCompute(gray(right), None)
    if dl is None or dr is None or len(kl) < 8 or len(kr) < 8:
        return np.zeros(0)
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(dl, dr, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < ratio * m[1].distance]
    if len(good) < 8:
        return np.zeros(0)
    pl = np.float32([kl[m.queryIdx].pt for m in good])
    pr = np.float32([kr[m.trainIdx].pt for m in good])
    _F, inliers = cv2.findFundamentalMat(pl, pr, cv2.FM_RANSAC, 1.0, 0.999)
    if inliers is None:
        return np.zeros(0)
    keep = inliers.ravel().astype(bool)
    return np.abs(pl[keep, 1] - pr[keep, 1]).astype(np.float64)
