"""Chessboard stereo calibration -> ROS camera_info (with rectification R and P), and other calibration readers.

`calibrate_stereo(left_images, right_images, pattern=(9, 6), square=0.025)`:
1. finds the inner corners in every image (cv2.findChessboardCorners + cornerSubPix, window scaled to the
   corner spacing; findChessboardCornersSB as a fallback); a pair is used only when the board is found in BOTH images,
   every refused pair is listed with the reason;
2. calibrates each camera alone (cv2.calibrateCamera), then the pair jointly (cv2.stereoCalibrate starting
   from those intrinsics) and reports the stereo RMS reprojection error in pixels;
3. derives the rectification (perception.camera.rectify.stereo_rectify): R and P per camera,
   P_right[0,3] = -fx * baseline, baseline in the unit of `square` (metres).

`read_kalibr_camera(path)` reads a Kalibr / EuRoC `sensor.yaml` (intrinsics, radial-tangential or
equidistant distortion, T_BS body<-sensor extrinsics).
"""
from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import yaml

from perception.camera.model import CameraInfo
from perception.camera.rectify import stereo_rectify
from perception.errors import CalibrationError, InputError


@dataclass
class StereoCalibration:
    """Result of `calibrate_stereo`. left/right carry K, D, R, P (ROS camera_info); R/T: left -> right camera."""

    left: CameraInfo
    right: CameraInfo
    rms: float
    rms_left: float
    rms_right: float
    R: np.ndarray
    T: np.ndarray
    baseline: float
    used: list[tuple[str, str]]
    rejected: list[tuple[str, str, str]] = field(default_factory=list)
    per_pair_rms: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        """Numbers and lists for the CLI's JSON line."""
        return {
            "rms_px": float(self.rms),
            "rms_left_px": float(self.rms_left),
            "rms_right_px": float(self.rms_right),
            "baseline": float(self.baseline),
            "fx": float(self.left.fx),
            "pairs_used": len(self.used),
            "pairs_rejected": len(self.rejected),
            "rejected": [{"left": l, "right": r, "reason": why} for l, r, why in self.rejected],
            "per_pair_rms_px": [float(v) for v in self.per_pair_rms],
        }


def parse_pattern(text: str) -> tuple[int, int]:
    """'9x6' -> (9, 6): inner corners per row x per column (OpenCV patternSize)."""
    try:
        cols, rows = (int(v) for v in str(text).lower().split("x"))
    except ValueError as err:
        raise InputError(f"'{text}' is not COLSxROWS", subject="--pattern", hint="e.g. 9x6 inner corners") from err
    if cols < 2 or rows < 2 or cols == rows:
        raise InputError(f"{cols}x{rows} is not usable", subject="--pattern",
                         hint="at least 2x2 inner corners, and a non-square board so its orientation is unambiguous")
    return cols, rows


def expand_images(specs: Sequence[str], side: str) -> list[str]:
    """Files and glob patterns -> sorted, de-duplicated list of files (order of the specs kept)."""
    out: list[str] = []
    for spec in specs:
        matches = sorted(glob.glob(spec)) if any(c in spec for c in "*?[") else [spec]
        if not matches:
            raise InputError("matches no file", subject=f"--{side} {spec}")
        for m in matches:
            if not Path(m).is_file():
                raise InputError("is not a file", subject=f"--{side} {m}")
            if m not in out:
                out.append(m)
    if not out:
        raise InputError("no images given", subject=f"--{side}")
    return out


def board_points(pattern: tuple[int, int], square: float) -> np.ndarray:
    """Inner-corner coordinates on the board plane (z = 0), row by row, in the unit of `square`."""
    cols, rows = pattern
    grid = np.zeros((rows * cols, 3), np.float32)
    grid[:, :2] = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2) * float(square)
    return grid


def find_chessboard(gray: np.ndarray, pattern: tuple[int, int]) -> np.ndarray | None:
    """Sub-pixel inner corners (N x 1 x 2 float32, OpenCV order) or None when the whole board is not seen.

    cv2.findChessboardCorners + cornerSubPix with a window scaled to the board's corner spacing (measured on
    synthetic boards: more accurate focal length and baseline than findChessboardCornersSB); SB as fallback.
    """
    found, corners = cv2.findChessboardCorners(
        gray, pattern, flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE)
    if not found:
        found, corners = cv2.findChessboardCornersSB(gray, pattern, flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
        return corners.astype(np.float32) if found else None
    grid = corners.reshape(pattern[1], pattern[0], 2)
    spacing = min(np.linalg.norm(np.diff(grid, axis=0), axis=2).min(), np.linalg.norm(np.diff(grid, axis=1), axis=2).min())
    half = int(np.clip(round(0.3 * spacing), 2, 11))  # window 2*half+1 stays inside the neighbouring squares
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4)
    return cv2.cornerSubPix(gray, corners, (half, half), (-1, -1), criteria)


def _load_gray(img, label: str) -> np.ndarray:
    if isinstance(img, np.ndarray):
        arr = img
    else:
        arr = cv2.imread(str(img), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise InputError("cannot be read as an image", subject=label)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2GRAY if arr.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    if arr.dtype != np.uint8:
        raise InputError(f"has dtype {arr.dtype}", subject=label, hint="pass 8- or 16-bit images")
    return arr


def _log_nothing(msg: str) -> None:
    pass


def calibrate_stereo(
    left_images: Sequence,
    right_images: Sequence,
    pattern: tuple[int, int] = (9, 6),
    square: float = 0.025,
    *,
    model: str = "plumb_bob",
    min_pairs: int = 6,
    alpha: float = 0.0,
    names: tuple[str, str] = ("left", "right"),
    frame_ids: tuple[str, str] = ("left_camera_optical_frame", "right_camera_optical_frame"),
    log: Callable[[str], None] = _log_nothing,
) -> StereoCalibration:
    """Calibrate a stereo pair from chessboard views (paths or arrays, paired by position); see the module doc."""
    if len(left_images) != len(right_images):
        raise InputError(f"{len(left_images)} left but {len(right_images)} right images", subject="calibration images",
                         hint="pass one right image per left image, in the same order")
    if model not in ("plumb_bob", "rational_polynomial"):
        raise CalibrationError(f"model '{model}' is not supported for chessboard calibration", subject="--model",
                               hint="use plumb_bob or rational_polynomial")
    if not (square > 0 and np.isfinite(square)):
        raise InputError(f"{square} is not a positive size", subject="--square")
    obj = board_points(pattern, square)
    objpoints, lpoints, rpoints, used, rejected = [], [], [], [], []
    size = None
    for i, (li, ri) in enumerate(zip(left_images, right_images)):
        lname = str(li) if not isinstance(li, np.ndarray) else f"left[{i}]"
        rname = str(ri) if not isinstance(ri, np.ndarray) else f"right[{i}]"
        lg, rg = _load_gray(li, lname), _load_gray(ri, rname)
        if lg.shape != rg.shape:
            rejected.append((lname, rname, f"sizes differ: {lg.shape[::-1]} vs {rg.shape[::-1]}"))
            continue
        if size is None:
            size = lg.shape[::-1]
        elif lg.shape[::-1] != size:
            rejected.append((lname, rname, f"size {lg.shape[::-1]} differs from the first pair's {size}"))
            continue
        lc, rc = find_chessboard(lg, pattern), find_chessboard(rg, pattern)
        if lc is None or rc is None:
            where = "both images" if lc is None and rc is None else ("left image" if lc is None else "right image")
            rejected.append((lname, rname, f"{pattern[0]}x{pattern[1]} board not found in the {where}"))
            log(f"refused {Path(lname).name} / {Path(rname).name}: board not found in the {where}")
            continue
        objpoints.append(obj)
        lpoints.append(lc)
        rpoints.append(rc)
        used.append((lname, rname))
    if len(used) < min_pairs:
        details = "; ".join(f"{Path(l).name}/{Path(r).name}: {why}" for l, r, why in rejected) or "none refused"
        raise CalibrationError(
            f"only {len(used)} usable pairs, need at least {min_pairs} ({details})", subject="stereo calibration",
            hint="capture more views with the whole board visible in both cameras",
        )
    log(f"board found in {len(used)} of {len(used) + len(rejected)} pairs; calibrating")

    flags = cv2.CALIB_RATIONAL_MODEL if model == "rational_polynomial" else 0
    rms_l, K1, D1, _, _ = cv2.calibrateCamera(objpoints, lpoints, size, None, None, flags=flags)
    rms_r, K2, D2, _, _ = cv2.calibrateCamera(objpoints, rpoints, size, None, None, flags=flags)
    log(f"mono RMS: left {rms_l:.3f} px, right {rms_r:.3f} px")
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 200, 1e-9)
    out = cv2.stereoCalibrateExtended(
        objpoints, lpoints, rpoints, K1, D1, K2, D2, size, None, None,
        flags=flags | cv2.CALIB_USE_INTRINSIC_GUESS, criteria=criteria,
    )  # OpenCV >= 4.9 also returns rvecs, tvecs before perViewErrors
    rms, K1, D1, K2, D2, R, T = out[:7]
    per_view = out[-1]
    log(f"stereo RMS: {rms:.3f} px")
    dist = "rational_polynomial" if model == "rational_polynomial" else "plumb_bob"
    left = CameraInfo(width=size[0], height=size[1], K=K1, D=D1.ravel()[: 8 if flags else 5], distortion_model=dist,
                      name=names[0], frame_id=frame_ids[0])
    right = CameraInfo(width=size[0], height=size[1], K=K2, D=D2.ravel()[: 8 if flags else 5], distortion_model=dist,
                       name=names[1], frame_id=frame_ids[1])
    left, right = stereo_rectify(left, right, R, T, alpha=alpha)
    per_pair = np.sqrt(np.mean(np.square(np.asarray(per_view, dtype=np.float64)), axis=1)).tolist()
    return StereoCalibration(left, right, float(rms), float(rms_l), float(rms_r), R, T.ravel(),
                             float(np.linalg.norm(T)), used, rejected, per_pair)


# --- Kalibr / EuRoC sensor.yaml ----------------------------------------------------------------------------
def read_kalibr_camera(path: str | Path, *, name: str | None = None,
                       frame_id: str | None = None) -> tuple[CameraInfo, np.ndarray]:
    """(CameraInfo with raw K and D, T_BS 4x4 body<-sensor) from a EuRoC/Kalibr camera `sensor.yaml`."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError("file not found", subject=str(path))
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("%"))
    try:
        data = yaml.safe_load(text)
        fu, fv, cu, cv = (float(v) for v in data["intrinsics"])
        width, height = (int(v) for v in data["resolution"])
        coeffs = [float(v) for v in data.get("distortion_coefficients", [])]
        T_BS = np.asarray(data["T_BS"]["data"], dtype=np.float64).reshape(4, 4)
        model = str(data.get("distortion_model", "radial-tangential"))
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as err:
        raise CalibrationError(f"not a Kalibr/EuRoC camera sensor.yaml ({err})", subject=str(path)) from err
    if model in ("radial-tangential", "radtan"):
        D, dist = np.array((coeffs + [0.0] * 5)[:5]), "plumb_bob"
    elif model in ("equidistant", "equi"):
        D, dist = np.array(coeffs[:4]), "equidistant"
    else:
        raise CalibrationError(f"distortion model '{model}' is not supported", subject=str(path),
                               hint="radial-tangential or equidistant")
    K = np.array([[fu, 0.0, cu], [0.0, fv, cv], [0.0, 0.0, 1.0]])
    cam = CameraInfo(width=width, height=height, K=K, D=D, distortion_model=dist,
                     name=name or path.parent.name, frame_id=frame_id or f"{path.parent.name}_optical_frame")
    return cam, T_BS
