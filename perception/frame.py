"""What flows through the pipeline: a stamped stereo (or mono) frame and its camera models.

Images are numpy arrays: uint8 HxW (mono) or HxWx3 in BGR order (OpenCV's), C-contiguous.
The header (stamp, frame_id) travels unchanged from the input to every output.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perception.camera.model import CameraInfo


@dataclass(frozen=True)
class Header:
    """ROS std_msgs/Header without ROS: stamp in integer nanoseconds since the epoch, and the frame id."""

    stamp_ns: int
    frame_id: str

    @property
    def stamp_s(self) -> float:
        return self.stamp_ns * 1e-9


@dataclass(frozen=True)
class Pose:
    """Pose of `child_frame` in `frame` (REP-105: odom -> base_link): position (m), quaternion x, y, z, w."""

    position: np.ndarray
    orientation: np.ndarray
    frame: str = "odom"
    child_frame: str = "base_link"

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous transform frame <- child_frame."""
        x, y, z, w = (float(v) for v in self.orientation)
        n = x * x + y * y + z * z + w * w
        s = 2.0 / n if n > 0 else 0.0
        T = np.eye(4)
        T[:3, :3] = [
            [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
            [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
            [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
        ]
        T[:3, 3] = np.asarray(self.position, dtype=np.float64)
        return T


@dataclass
class Frame:
    """One synchronised capture: left image (always), right image (stereo) and their camera models.

    `rectified` says whether left/right are already rectified images. `truth` carries ground truth when the
    source has it (the synthetic world): keys documented in `perception.sim`.
    """

    header: Header
    left: np.ndarray
    right: np.ndarray | None = None
    left_info: CameraInfo | None = None
    right_info: CameraInfo | None = None
    rectified: bool = True
    pose: Pose | None = None
    index: int = 0
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def is_stereo(self) -> bool:
        return self.right is not None
