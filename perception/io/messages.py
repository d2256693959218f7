"""Conversions between ROS 2 messages (rosbags message objects, no rclpy) and the numpy / dataclass world.

This module is the one place the bag reader, the bag writer and the ROS nodes import message conversions from,
so a message means the same thing everywhere. It holds camera_info, strings, occupancy grids, disparity and
diagnostics, and re-exports the rest, which lives in focused modules:

* `perception.io.typestore`: the rosbags typestore (+ vision_msgs), (de)serialisation, header / time messages;
* `perception.io.encodings`: Image / CompressedImage <-> numpy, with the image conventions documented there;
* `perception.io.geometry`: poses, odometry, tf;
* `perception.io.detections`: 2-D / 3-D detections <-> vision_msgs.

Every inconsistency in an incoming message (NaN in camera_info, a grid whose size disagrees with its header ...)
raises `perception.errors.InputError` whose subject names the topic and whose message says what is wrong.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from perception.camera.model import CameraInfo
from perception.errors import CalibrationError, InputError
from perception.frame import Header, Pose
from perception.io.detections import (
    Detection2D, Detection3D, as_detection2d, detections3d_from_msg, detections3d_to_msg, detections_from_msg,
    detections_to_msg,
)
from perception.io.encodings import (
    CAMERA_ENCODINGS, Encoding, compressed_from_msg, compressed_to_msg, encoding_info, image_from_msg, image_to_msg,
    infer_encoding, to_pipeline,
)
from perception.io.geometry import (
    POSE_TYPES, odometry_to_msg, pose_from_msg, pose_msg, pose_to_msg, quaternion_yaw, transforms_from_msg,
    transforms_to_msg, yaw_quaternion,
)
from perception.io.typestore import (
    BASE_STORE, VISION_MSGS, deserialize, header_from_msg, header_msg, msg_class, serialize, stamp_ns, time_msg,
    typestore,
)
from perception.io.typestore import subject as _subject


# --- CameraInfo ---------------------------------------------------------------------------------------------------
def camera_info_from_msg(msg, *, topic: str | None = None) -> CameraInfo:
    """perception.camera.CameraInfo from sensor_msgs/CameraInfo; NaN, zero focal length etc. -> InputError."""
    subject = _subject(topic)
    try:
        P = np.asarray(msg.p, dtype=np.float64)
        return CameraInfo(
            width=int(msg.width),
            height=int(msg.height),
            K=np.asarray(msg.k, dtype=np.float64),
            D=np.asarray(msg.d, dtype=np.float64),
            R=np.asarray(msg.r, dtype=np.float64),
            P=None if not np.any(P) else P,
            distortion_model=str(msg.distortion_model),
            frame_id=str(msg.header.frame_id),
            name=topic or "camera",
        )
    except CalibrationError as err:
        raise InputError(f"invalid camera_info: {err.message}", subject=subject, hint=err.hint) from err


def camera_info_to_msg(header: Header, info: CameraInfo):
    cls = typestore().types
    return cls["sensor_msgs/msg/CameraInfo"](
        header=header_msg(header),
        height=int(info.height),
        width=int(info.width),
        distortion_model=info.distortion_model or "plumb_bob",
        d=np.asarray(info.D, dtype=np.float64).ravel(),
        k=np.asarray(info.K, dtype=np.float64).ravel(),
        r=np.asarray(info.R, dtype=np.float64).ravel(),
        p=np.asarray(info.P, dtype=np.float64).ravel(),
        binning_x=0,
        binning_y=0,
        roi=cls["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


# --- strings, occupancy grids, disparity ---------------------------------------------------------------------
def string_to_msg(text: str):
    return msg_class("std_msgs/msg/String")(data=str(text))


class GridData(NamedTuple):
    """An occupancy grid without ROS: int8 HxW (row = y index, column = x index; 0..100 cost, -1 unknown),
    cell size in metres, and the pose (x, y, yaw) of cell (0, 0)'s corner in the header frame."""

    data: np.ndarray
    resolution: float
    origin_xy_yaw: tuple[float, float, float]


def occupancy_grid_to_msg(header: Header, data: np.ndarray, resolution: float, origin_xy_yaw: Sequence[float]):
    subject = "OccupancyGrid"
    grid = np.asarray(data)
    if grid.ndim != 2 or grid.size == 0:
        raise InputError(f"grid must be a non-empty 2-D array, got shape {grid.shape}", subject=subject)
    if not np.issubdtype(grid.dtype, np.integer):
        raise InputError(f"grid dtype {grid.dtype} is not integer (0..100, -1 unknown)", subject=subject)
    if grid.min() < -1 or grid.max() > 100:
        raise InputError(f"grid values {grid.min()}..{grid.max()} outside -1..100", subject=subject)
    if not (resolution > 0 and math.isfinite(resolution)):
        raise InputError(f"resolution {resolution} is not a positive number", subject=subject)
    x, y, yaw = (float(v) for v in origin_xy_yaw)
    t = typestore().types
    height, width = grid.shape
    info = t["nav_msgs/msg/MapMetaData"](
        map_load_time=time_msg(header.stamp_ns),
        resolution=float(resolution),
        width=width,
        height=height,
        origin=pose_msg(Pose(np.array([x, y, 0.0]), yaw_quaternion(yaw))),
    )
    return t["nav_msgs/msg/OccupancyGrid"](
        header=header_msg(header), info=info, data=np.ascontiguousarray(grid, dtype=np.int8).reshape(-1)
    )


def occupancy_grid_from_msg(msg, *, topic: str | None = None) -> GridData:
    h, w = int(msg.info.height), int(msg.info.width)
    data = np.asarray(msg.data, dtype=np.int8)
    if data.size != h * w:
        raise InputError(f"grid has {data.size} cells, header says {w}x{h}", subject=_subject(topic))
    o = msg.info.origin
    yaw = quaternion_yaw([o.orientation.x, o.orientation.y, o.orientation.z, o.orientation.w])
    return GridData(data.reshape(h, w), float(msg.info.resolution), (float(o.position.x), float(o.position.y), yaw))


class DisparityData(NamedTuple):
    """stereo_msgs/DisparityImage without ROS: float32 HxW disparity in pixels, focal length f (px),
    baseline T (m), the valid disparity range and the smallest increment delta_d."""

    disparity: np.ndarray
    f: float
    baseline: float
    min_disparity: float
    max_disparity: float
    delta_d: float


def disparity_to_msg(
    header: Header, disparity: np.ndarray, f: float, baseline: float, min_d: float, max_d: float, delta_d: float = 1 / 16
):
    """stereo_msgs/DisparityImage (32FC1). Invalid pixels keep whatever value marks them (e.g. < min_d or NaN)."""
    d = np.asarray(disparity)
    if d.ndim != 2:
        raise InputError(f"disparity must be HxW, got {d.shape}", subject="DisparityImage")
    if not (f > 0 and baseline > 0):
        raise InputError(f"f={f} and baseline={baseline} must be positive", subject="DisparityImage")
    t = typestore().types
    image = image_to_msg(header, d.astype(np.float32, copy=False), "32FC1")
    h, w = d.shape
    return t["stereo_msgs/msg/DisparityImage"](
        header=header_msg(header),
        image=image,
        f=float(f),
        t=float(baseline),
        valid_window=t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=h, width=w, do_rectify=False),
        min_disparity=float(min_d),
        max_disparity=float(max_d),
        delta_d=float(delta_d),
    )


def disparity_from_msg(msg, *, topic: str | None = None) -> DisparityData:
    d = image_from_msg(msg.image, topic=topic)
    if d.dtype != np.float32 or d.ndim != 2:
        raise InputError(f"disparity image is {msg.image.encoding}, expected 32FC1", subject=_subject(topic))
    return DisparityData(d, float(msg.f), float(msg.t), float(msg.min_disparity), float(msg.max_disparity), float(msg.delta_d))


# --- diagnostics -------------------------------------------------------------------------------------------------
LEVELS = {"OK": 0, "WARN": 1, "ERROR": 2, "STALE": 3}


@dataclass
class DiagnosticStatus:
    """diagnostic_msgs/DiagnosticStatus without ROS. level: 0 OK, 1 WARN, 2 ERROR, 3 STALE (or those names)."""

    name: str
    level: int | str = 0
    message: str = ""
    hardware_id: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def level_value(self) -> int:
        if isinstance(self.level, str):
            if self.level.upper() not in LEVELS:
                raise InputError(f"unknown diagnostic level '{self.level}'", subject=self.name, hint="OK, WARN, ERROR or STALE")
            return LEVELS[self.level.upper()]
        if int(self.level) not in LEVELS.values():
            raise InputError(f"diagnostic level {self.level} outside 0..3", subject=self.name)
        return int(self.level)


def diagnostics_to_msg(header: Header, statuses: DiagnosticStatus | Iterable[DiagnosticStatus]):
    t = typestore().types
    if isinstance(statuses, DiagnosticStatus):
        statuses = [statuses]
    out = []
    for st in statuses:
        out.append(
            t["diagnostic_msgs/msg/DiagnosticStatus"](
                level=st.level_value,
                name=st.name,
                message=st.message,
                hardware_id=st.hardware_id,
                values=[t["diagnostic_msgs/msg/KeyValue"](key=str(k), value=str(v)) for k, v in st.values.items()],
            )
        )
    return t["diagnostic_msgs/msg/DiagnosticArray"](header=header_msg(header), status=out)


def diagnostics_from_msg(msg) -> list[DiagnosticStatus]:
    out = []
    for st in msg.status:
        level = st.level
        level = level[0] if isinstance(level, (bytes, bytearray)) else int(level)
        out.append(
            DiagnosticStatus(name=str(st.name), level=level, message=str(st.message), hardware_id=str(st.hardware_id),
                             values={str(kv.key): str(kv.value) for kv in st.values})
        )
    return out


__all__ = [
    "BASE_STORE", "CAMERA_ENCODINGS", "Detection2D", "Detection3D", "DiagnosticStatus", "DisparityData", "Encoding",
    "GridData", "LEVELS", "POSE_TYPES", "VISION_MSGS", "as_detection2d", "camera_info_from_msg", "camera_info_to_msg",
    "compressed_from_msg", "compressed_to_msg", "deserialize", "detections3d_from_msg", "detections3d_to_msg",
    "detections_from_msg", "detections_to_msg", "diagnostics_from_msg", "diagnostics_to_msg", "disparity_from_msg",
    "disparity_to_msg", "encoding_info", "header_from_msg", "header_msg", "image_from_msg", "image_to_msg",
    "infer_encoding", "msg_class", "occupancy_grid_from_msg", "occupancy_grid_to_msg", "odometry_to_msg",
    "pose_from_msg", "pose_msg", "pose_to_msg", "quaternion_yaw", "serialize", "stamp_ns", "string_to_msg", "time_msg",
    "to_pipeline", "transforms_from_msg", "transforms_to_msg", "typestore", "yaw_quaternion",
]
