"""The pinhole camera model of ROS sensor_msgs/CameraInfo, as a plain dataclass.

Reads and writes the YAML of ROS camera_calibration / camera_info_manager, so a robot's calibration files
work as they are. Message conversion lives in the bag reader and the nodes; this module knows no messages.

>>> cam = CameraInfo.from_intrinsics(320, 240, fx=300.0, fy=300.0, cx=160.0, cy=120.0)
>>> round(cam.fx), cam.width, cam.is_rectified
(300, 320, True)
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

from perception.errors import CalibrationError

DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant", "")


def _matrix(value, shape: tuple[int, int], name: str, subject: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size != shape[0] * shape[1]:
        raise CalibrationError(f"{name} has {arr.size} values, expected {shape[0] * shape[1]}", subject=subject)
    arr = arr.reshape(shape)
    if not np.all(np.isfinite(arr)):
        raise CalibrationError(f"{name} contains NaN or inf", subject=subject, hint="recalibrate the camera")
    return arr


@dataclass(frozen=True)
class CameraInfo:
    """Intrinsics, distortion, rectification and projection of one camera (ROS CameraInfo fields).

    K (3x3) intrinsics of the raw image; D distortion coefficients; R (3x3) rectification rotation;
    P (3x4) projection of the rectified image (for the right camera of a pair, P[0,3] = -fx * baseline).
    """

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray = field(default_factory=lambda: np.zeros(5))
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    P: np.ndarray | None = None
    distortion_model: str = "plumb_bob"
    frame_id: str = "camera_optical_frame"
    name: str = "camera"

    def __post_init__(self) -> None:
        subject = f"camera_info '{self.name}'"
        if self.width <= 0 or self.height <= 0:
            raise CalibrationError(f"image size {self.width}x{self.height} is not positive", subject=subject)
        object.__setattr__(self, "K", _matrix(self.K, (3, 3), "K", subject))
        object.__setattr__(self, "R", _matrix(self.R, (3, 3), "R", subject))
        object.__setattr__(self, "D", np.asarray(self.D, dtype=np.float64).ravel())
        if not np.all(np.isfinite(self.D)):
            raise CalibrationError("D contains NaN or inf", subject=subject)
        if self.P is None:
            P = np.zeros((3, 4))
            P[:, :3] = self.K
            object.__setattr__(self, "P", P)
        else:
            object.__setattr__(self, "P", _matrix(self.P, (3, 4), "P", subject))
        if self.K[0, 0] <= 0 or self.K[1, 1] <= 0:
            raise CalibrationError("focal length in K is not positive", subject=subject, hint="is the camera calibrated?")
        if self.distortion_model not in DISTORTION_MODELS:
            raise CalibrationError(
                f"unknown distortion model '{self.distortion_model}'",
                subject=subject,
                hint=f"use one of {', '.join(m for m in DISTORTION_MODELS if m)}",
            )

    @classmethod
    def from_intrinsics(
        cls, width: int, height: int, fx: float, fy: float, cx: float, cy: float, *, baseline: float = 0.0, **kw
    ) -> "CameraInfo":
        """An ideal rectified camera; `baseline` > 0 makes it the right camera of a pair (P[0,3] = -fx*B)."""
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        P = np.zeros((3, 4))
        P[:, :3] = K
        P[0, 3] = -fx * baseline
        return cls(width=width, height=height, K=K, D=np.zeros(5), R=np.eye(3), P=P, **kw)

    # Rectified-image intrinsics (from P), which is what stereo and projection use.
    @property
    def fx(self) -> float:
        return float(self.P[0, 0])

    @property
    def fy(self) -> float:
        return float(self.P[1, 1])

    @property
    def cx(self) -> float:
        return float(self.P[0, 2])

    @property
    def cy(self) -> float:
        return float(self.P[1, 2])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), the order OpenCV takes."""
        return (self.width, self.height)

    @property
    def is_rectified(self) -> bool:
        """True when the raw image already is the rectified one (no distortion, identity R, P == K)."""
        return bool(
            not np.any(self.D) and np.allclose(self.R, np.eye(3)) and np.allclose(self.P[:, :3], self.K)
        )

    def scaled(self, width: int, height: int) -> "CameraInfo":
        """The same camera for an image resized to width x height."""
        sx, sy = width / self.width, height / self.height
        S = np.diag([sx, sy, 1.0])
        return replace(self, width=width, height=height, K=S @ self.K, P=S @ self.P)

    # --- ROS camera_calibration YAML ---------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> "CameraInfo":
        """Load a camera_info YAML as written by ROS camera_calibration / camera_info_manager."""
        path = Path(path)
        if not path.is_file():
            raise CalibrationError(
                "calibration file not found", subject=str(path), hint="run `perception calibrate stereo` or pass --calibration"
            )
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise CalibrationError(f"not valid YAML: {err}", subject=str(path)) from err
        return cls.from_dict(data, subject=str(path))

    @classmethod
    def from_dict(cls, data: dict, *, subject: str = "camera_info") -> "CameraInfo":
        if not isinstance(data, dict):
            raise CalibrationError("not a camera_info mapping", subject=subject)

        def block(key: str):
            if key not in data:
                raise CalibrationError(f"missing '{key}'", subject=subject, hint="is this a ROS camera_info YAML?")
            value = data[key]
            return value["data"] if isinstance(value, dict) else value

        try:
            width, height = int(data["image_width"]), int(data["image_height"])
        except (KeyError, TypeError, ValueError) as err:
            raise CalibrationError("missing or invalid image_width / image_height", subject=subject) from err
        try:
            return cls._from_blocks(data, width, height, block)
        except CalibrationError as err:  # name the file, not just the camera
            raise CalibrationError(err.message, subject=subject, hint=err.hint) from err

    @classmethod
    def _from_blocks(cls, data: dict, width: int, height: int, block) -> "CameraInfo":
        return cls(
            width=width,
            height=height,
            K=block("camera_matrix"),
            D=block("distortion_coefficients") if "distortion_coefficients" in data else np.zeros(5),
            R=block("rectification_matrix") if "rectification_matrix" in data else np.eye(3),
            P=block("projection_matrix") if "projection_matrix" in data else None,
            distortion_model=str(data.get("distortion_model", "plumb_bob")),
            name=str(data.get("camera_name", "camera")),
            frame_id=str(data.get("frame_id", "camera_optical_frame")),
        )

    def to_dict(self) -> dict:
        def block(arr: np.ndarray) -> dict:
            arr = np.atleast_2d(arr)
            return {"rows": int(arr.shape[0]), "cols": int(arr.shape[1]), "data": [float(v) for v in arr.ravel()]}

        return {
            "image_width": int(self.width),
            "image_height": int(self.height),
            "camera_name": self.name,
            "frame_id": self.frame_id,
            "camera_matrix": block(self.K),
            "distortion_model": self.distortion_model,
            "distortion_coefficients": block(self.D.reshape(1, -1)),
            "rectification_matrix": block(self.R),
            "projection_matrix": block(self.P),
        }

    def to_yaml(self, path: str | Path, *, comment: str | None = None) -> None:
        """Write the camera_info YAML; `comment` lines go first as `# ...` (YAML readers, ROS included, skip them)."""
        header = "".join(f"# {line}\n" for line in comment.splitlines()) if comment else ""
        Path(path).write_text(header + yaml.safe_dump(self.to_dict(), sort_keys=False))


def stereo_baseline(right: CameraInfo) -> float:
    """Baseline in metres from the right camera's projection matrix (P[0,3] = -fx * B)."""
    if right.P[0, 3] >= 0:
        raise CalibrationError(
            "right camera P[0,3] is not negative, so it carries no stereo baseline",
            subject=f"camera_info '{right.name}'",
            hint="pass the RIGHT camera of a rectified stereo pair",
        )
    return float(-right.P[0, 3] / right.P[0, 0])
