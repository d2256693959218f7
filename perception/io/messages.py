"""Conversions between ROS 2 messages (rosbags message objects, no rclpy) and the numpy / dataclass world.

This is the only module that knows message layouts; the bag reader, the bag writer and the ROS nodes all go
through it, so a message means the same thing everywhere.

Typestore: `typestore()` is rosbags' ROS 2 Humble store (the message definitions used here are identical in
Humble, Iron, Jazzy and Kilted, so the type hashes match a robot's) plus vision_msgs (ROS 2 vision_msgs 4.x),
registered from the .msg text below because rosbags does not bundle it.

Image conventions
-----------------
* `image_from_msg` returns the image *as stored* ("native"): the dtype and channel order the encoding names
  (rgb8 stays RGB, bgra8 keeps alpha, mono16 is uint16 in host byte order, 32FC1 is float32, yuv422 is the raw
  HxWx2 uint8 byte pairs). Writing that array back with the same encoding gives identical message data, so the
  lossless encodings round-trip exactly.
* `to_pipeline` converts a native image to what the pipeline takes (see `perception.frame`): **BGR uint8 HxWx3**
  for colour (rgb8, rgba8, bgra8, yuv422/uyvy, yuv422_yuy2/yuyv, bayer_*) and **mono uint8 HxW** for 8-bit
  grey. **mono16 / 16UC1 stays uint16 HxW** by default (depth or 12/16-bit cameras: no information is thrown
  away); pass `mono16_scale` (e.g. 1/256 for a full-range 16-bit camera, 1/16 for 12-bit data) to get uint8
  = clip(round(value * scale), 0, 255). Float encodings (32FC1 ...) are not camera images and are refused there.
* Writing: `image_to_msg` infers the encoding from the array (uint8 HxW mono8, uint8 HxWx3 bgr8, uint8 HxWx4
  bgra8, uint16 HxW mono16, float32 HxW 32FC1); an explicit encoding takes the array in that encoding's layout
  (an "rgb8" array is RGB). Data is written little-endian (is_bigendian = 0), step = width * bytes per pixel.

Every inconsistency in an incoming message (unknown encoding, step < width * bytes per pixel,
step * height != len(data), odd width for yuv422, NaN in camera_info, corrupt JPEG ...) raises
`perception.errors.InputError` whose subject names the topic and whose message says what is wrong.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

import cv2
import numpy as np
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from perception.camera.model import CameraInfo
from perception.errors import CalibrationError, InputError
from perception.frame import Header, Pose

# --------------------------------------------------------------------------------------------------------------
# Type store
# --------------------------------------------------------------------------------------------------------------
BASE_STORE = Stores.ROS2_HUMBLE

#: vision_msgs (ROS 2, 4.x: Humble and newer) definitions needed for detections, registered into the typestore.
VISION_MSGS: dict[str, str] = {
    "vision_msgs/msg/Point2D": "float64 x\nfloat64 y\n",
    "vision_msgs/msg/Pose2D": "vision_msgs/Point2D position\nfloat64 theta\n",
    "vision_msgs/msg/BoundingBox2D": "vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n",
    "vision_msgs/msg/BoundingBox3D": "geometry_msgs/Pose center\ngeometry_msgs/Vector3 size\n",
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/ObjectHypothesisWithPose": (
        "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n"
    ),
    "vision_msgs/msg/Detection2D": (
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\nvision_msgs/BoundingBox2D bbox\n"
        "string id\n"
    ),
    "vision_msgs/msg/Detection2DArray": "std_msgs/Header header\nvision_msgs/Detection2D[] detections\n",
    "vision_msgs/msg/Detection3D": (
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\nvision_msgs/BoundingBox3D bbox\n"
        "string id\n"
    ),
    "vision_msgs/msg/Detection3DArray": "std_msgs/Header header\nvision_msgs/Detection3D[] detections\n",
}


@lru_cache(maxsize=1)
def typestore():
    """The shared rosbags typestore: ROS 2 Humble standard messages + vision_msgs."""
    store = get_typestore(BASE_STORE)
    types: dict = {}
    for name, text in VISION_MSGS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def msg_class(msgtype: str):
    return typestore().types[msgtype]


def serialize(msg: Any, msgtype: str | None = None) -> bytes:
    """CDR bytes of a message object (msgtype defaults to the object's own)."""
    return bytes(typestore().serialize_cdr(msg, msgtype or msg.__msgtype__))


def deserialize(rawdata: bytes, msgtype: str) -> Any:
    return typestore().deserialize_cdr(rawdata, msgtype)


# --------------------------------------------------------------------------------------------------------------
# Header / time
# --------------------------------------------------------------------------------------------------------------
def time_msg(stamp_ns: int):
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return msg_class("builtin_interfaces/msg/Time")(sec=sec, nanosec=nanosec)


def stamp_ns(time) -> int:
    return int(time.sec) * 1_000_000_000 + int(time.nanosec)


def header_msg(header: Header):
    return msg_class("std_msgs/msg/Header")(stamp=time_msg(header.stamp_ns), frame_id=str(header.frame_id))


def header_from_msg(msg) -> Header:
    return Header(stamp_ns=stamp_ns(msg.stamp), frame_id=str(msg.frame_id))


# --------------------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------------------
class Encoding(NamedTuple):
    dtype: np.dtype
    channels: int


_NAMED: dict[str, Encoding] = {
    "mono8": Encoding(np.dtype(np.uint8), 1),
    "mono16": Encoding(np.dtype(np.uint16), 1),
    "bgr8": Encoding(np.dtype(np.uint8), 3),
    "rgb8": Encoding(np.dtype(np.uint8), 3),
    "bgra8": Encoding(np.dtype(np.uint8), 4),
    "rgba8": Encoding(np.dtype(np.uint8), 4),
    "bgr16": Encoding(np.dtype(np.uint16), 3),
    "rgb16": Encoding(np.dtype(np.uint16), 3),
    # packed 4:2:2, two bytes per pixel: yuv422 = UYVY byte order, yuv422_yuy2 = YUYV (sensor_msgs image_encodings)
    "yuv422": Encoding(np.dtype(np.uint8), 2),
    "uyvy": Encoding(np.dtype(np.uint8), 2),
    "yuv422_yuy2": Encoding(np.dtype(np.uint8), 2),
    "yuyv": Encoding(np.dtype(np.uint8), 2),
    "bayer_rggb8": Encoding(np.dtype(np.uint8), 1),
    "bayer_bggr8": Encoding(np.dtype(np.uint8), 1),
    "bayer_gbrg8": Encoding(np.dtype(np.uint8), 1),
    "bayer_grbg8": Encoding(np.dtype(np.uint8), 1),
}
_GENERIC = re.compile(r"^(8|16|32|64)(U|S|F)C([1-4])$")
_GENERIC_DTYPES = {
    ("8", "U"): np.uint8, ("8", "S"): np.int8, ("16", "U"): np.uint16, ("16", "S"): np.int16,
    ("32", "S"): np.int32, ("32", "F"): np.float32, ("64", "F"): np.float64,
}
#: Encodings the pipeline accepts as camera images (after `to_pipeline`).
CAMERA_ENCODINGS = (
    "mono8", "8UC1", "bgr8", "8UC3", "rgb8", "bgra8", "8UC4", "rgba8", "mono16", "16UC1", "bgr16", "rgb16",
    "yuv422", "uyvy", "yuv422_yuy2", "yuyv", "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8",
)
# OpenCV's Bayer names are shifted by one pixel relative to ROS (this is cv_bridge's mapping).
_BAYER = {
    "bayer_rggb8": cv2.COLOR_BayerBG2BGR, "bayer_bggr8": cv2.COLOR_BayerRG2BGR,
    "bayer_gbrg8": cv2.COLOR_BayerGR2BGR, "bayer_grbg8": cv2.COLOR_BayerGB2BGR,
}


def encoding_info(encoding: str, *, subject: str | None = None) -> Encoding:
    """dtype and channel count of a sensor_msgs/Image encoding, or InputError for an unknown one."""
    if encoding in _NAMED:
        return _NAMED[encoding]
    m = _GENERIC.match(encoding or "")
    if m and (m.group(1), m.group(2)) in _GENERIC_DTYPES:
        return Encoding(np.dtype(_GENERIC_DTYPES[(m.group(1), m.group(2))]), int(m.group(3)))
    raise InputError(
        f"unsupported image encoding '{encoding}'",
        subject=subject,
        hint="supported: " + ", ".join(CAMERA_ENCODINGS) + ", 32FC1 and other <bits><U|S|F>C<n>",
    )


def infer_encoding(image: np.ndarray, *, subject: str | None = None) -> str:
    """The encoding a pipeline array is written with: mono8, bgr8, bgra8, mono16, 32FC1 (or <bits>C<n>)."""
    image = np.asarray(image)
    channels = 1 if image.ndim == 2 else (image.shape[2] if image.ndim == 3 else 0)
    kind = image.dtype.newbyteorder("=")
    table = {
        (np.dtype(np.uint8), 1): "mono8", (np.dtype(np.uint8), 3): "bgr8", (np.dtype(np.uint8), 4): "bgra8",
        (np.dtype(np.uint16), 1): "mono16", (np.dtype(np.uint16), 3): "bgr16", (np.dtype(np.float32), 1): "32FC1",
    }
    if (kind, channels) in table:
        return table[(kind, channels)]
    for (bits, letter), dt in _GENERIC_DTYPES.items():
        if np.dtype(dt) == kind and 1 <= channels <= 4:
            return f"{bits}{letter}C{channels}"
    raise InputError(
        f"cannot infer an image encoding for a {image.dtype} array of shape {image.shape}",
        subject=subject,
        hint="images are uint8 HxW / HxWx3 (BGR), uint16 HxW, or float32 HxW; or pass encoding=",
    )


def _subject(topic: str | None, encoding: str | None = None) -> str:
    parts = [p for p in (f"topic {topic}" if topic else None, f"encoding {encoding}" if encoding else None) if p]
    return ", ".join(parts) or "image"


def image_from_msg(msg, *, topic: str | None = None) -> np.ndarray:
    """The image of a sensor_msgs/Image in its native layout (see module doc), validated; a copy-free view
    when the data is already contiguous and little-endian, otherwise a copy."""
    encoding = str(msg.encoding)
    subject = _subject(topic, encoding)
    info = encoding_info(encoding, subject=subject)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(msg.data, dtype=np.uint8) if not isinstance(msg.data, np.ndarray) else msg.data.view(np.uint8)
    if height <= 0 or width <= 0:
        raise InputError(f"empty image ({width}x{height})", subject=subject)
    bpp = info.dtype.itemsize * info.channels
    if step < width * bpp:
        raise InputError(
            f"step {step} is smaller than width {width} x {bpp} bytes per pixel = {width * bpp}", subject=subject
        )
    if step * height != data.size:
        raise InputError(
            f"data has {data.size} bytes but step {step} x height {height} = {step * height}", subject=subject
        )
    if info.channels == 2 and width % 2:
        raise InputError(f"packed 4:2:2 image with odd width {width}", subject=subject)
    if int(msg.is_bigendian) not in (0, 1):
        raise InputError(f"is_bigendian is {int(msg.is_bigendian)}, expected 0 or 1", subject=subject)
    rows = data.reshape(height, step)[:, : width * bpp]
    big = bool(msg.is_bigendian) and info.dtype.itemsize > 1
    stored = info.dtype.newbyteorder(">" if big else "<")
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    image = np.ascontiguousarray(rows).view(stored).reshape(shape)
    if not image.dtype.isnative:
        image = image.astype(info.dtype.newbyteorder("="))
    if not image.flags.writeable:
        image = image.copy()
    return image


def to_pipeline(
    image: np.ndarray, encoding: str, *, topic: str | None = None, mono16_scale: float | None = None
) -> np.ndarray:
    """A native image (`image_from_msg`) as the pipeline takes it: BGR uint8 HxWx3 or mono uint8 HxW; 16-bit mono
    stays uint16 unless `mono16_scale` is given (uint8 = clip(round(v * scale))). Always C-contiguous."""
    subject = _subject(topic, encoding)
    if encoding in ("mono8", "8UC1"):
        out = image
    elif encoding in ("bgr8", "8UC3"):
        out = image
    elif encoding == "rgb8":
        out = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif encoding in ("bgra8", "8UC4"):
        out = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif encoding == "rgba8":
        out = cv2.cvtColor(image, cv2.COLOR_RGBA2BGR)
    elif encoding in ("yuv422", "uyvy"):
        out = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_YUV2BGR_UYVY)
    elif encoding in ("yuv422_yuy2", "yuyv"):
        out = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_YUV2BGR_YUY2)
    elif encoding in _BAYER:
        out = cv2.cvtColor(np.ascontiguousarray(image), _BAYER[encoding])
    elif encoding in ("mono16", "16UC1"):
        out = image if mono16_scale is None else _scale16(image, mono16_scale)
    elif encoding in ("bgr16", "rgb16"):
        out = _scale16(image, 1.0 / 256.0 if mono16_scale is None else mono16_scale)
        if encoding == "rgb16":
            out = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
    else:
        raise InputError(
            "not a camera image encoding (depth / disparity / generic data)",
            subject=subject,
            hint="camera topics must carry one of " + ", ".join(CAMERA_ENCODINGS),
        )
    return np.ascontiguousarray(out)


def _scale16(image: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(np.rint(image.astype(np.float32) * float(scale)), 0, 255).astype(np.uint8)


def image_to_msg(header: Header, image: np.ndarray, encoding: str | None = None, *, topic: str | None = None):
    """A sensor_msgs/Image from an array in the layout of `encoding` (inferred when None, see module doc)."""
    image = np.asarray(image)
    encoding = encoding or infer_encoding(image, subject=_subject(topic))
    subject = _subject(topic, encoding)
    info = encoding_info(encoding, subject=subject)
    expected = 2 if info.channels == 1 else 3
    if image.ndim == 3 and info.channels == 1 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != expected or (info.channels > 1 and image.shape[2] != info.channels):
        raise InputError(
            f"array of shape {image.shape} does not fit {encoding} ({info.channels} channel(s))", subject=subject
        )
    if image.dtype.newbyteorder("=") != info.dtype:
        raise InputError(f"array dtype {image.dtype} does not fit {encoding} ({info.dtype})", subject=subject)
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f"empty image {image.shape}", subject=subject)
    if info.channels == 2 and image.shape[1] % 2:
        raise InputError(f"packed 4:2:2 image needs an even width, got {image.shape[1]}", subject=subject)
    little = np.ascontiguousarray(image, dtype=info.dtype.newbyteorder("<"))
    height, width = little.shape[:2]
    return msg_class("sensor_msgs/msg/Image")(
        header=header_msg(header),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * info.dtype.itemsize * info.channels,
        data=little.reshape(-1).view(np.uint8),
    )


# --- CompressedImage -------------------------------------------------------------------------------------------
def compressed_from_msg(msg, *, topic: str | None = None) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (jpeg / png; compressedDepth png) to BGR uint8, mono uint8 or,
    for 16-bit PNG, uint16. Corrupt data raises InputError."""
    fmt = str(msg.format)
    subject = _subject(topic) + f", format '{fmt}'"
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8) if not isinstance(msg.data, np.ndarray) else msg.data
    if "compresseddepth" in fmt.lower().replace(" ", ""):
        if data.size < 12:
            raise InputError("compressedDepth data shorter than its 12-byte header", subject=subject)
        data = data[12:]  # ConfigHeader: format enum + 2 depth quantisation floats
    if data.size == 0:
        raise InputError("empty compressed image", subject=subject)
    image = cv2.imdecode(np.ascontiguousarray(data), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError("compressed image data could not be decoded (corrupt or not jpeg/png)", subject=subject)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    # image_transport compresses colour as bgr8 ("rgb8; jpeg compressed bgr8"), so imdecode gives BGR already.
    return np.ascontiguousarray(image)


def compressed_to_msg(header: Header, image: np.ndarray, fmt: str = "jpeg", *, quality: int = 95, topic: str | None = None):
    """A sensor_msgs/CompressedImage as image_transport's compressed plugin writes it (BGR or mono input)."""
    image = np.asarray(image)
    fmt = fmt.lower()
    if fmt not in ("jpeg", "jpg", "png"):
        raise InputError(f"unsupported compression format '{fmt}'", subject=_subject(topic), hint="use jpeg or png")
    encoding = infer_encoding(image, subject=_subject(topic))
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt in ("jpeg", "jpg") else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(".jpg" if fmt in ("jpeg", "jpg") else ".png", image, params)
    if not ok:
        raise InputError(f"OpenCV could not encode a {encoding} image as {fmt}", subject=_subject(topic))
    name = "jpeg" if fmt in ("jpeg", "jpg") else "png"
    return msg_class("sensor_msgs/msg/CompressedImage")(
        header=header_msg(header), format=f"{encoding}; {name} compressed {encoding}", data=buf.reshape(-1)
    )


# --------------------------------------------------------------------------------------------------------------
# CameraInfo
# --------------------------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------------------------
# Poses and transforms
# --------------------------------------------------------------------------------------------------------------
def _pose_msg(pose: Pose):
    t = typestore().types
    p = np.asarray(pose.position, dtype=np.float64).ravel()
    q = np.asarray(pose.orientation, dtype=np.float64).ravel()
    if p.size != 3 or q.size != 4 or not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
        raise InputError(f"pose needs 3 finite position and 4 finite quaternion values, got {p} {q}", subject="pose")
    return t["geometry_msgs/msg/Pose"](
        position=t["geometry_msgs/msg/Point"](x=float(p[0]), y=float(p[1]), z=float(p[2])),
        orientation=t["geometry_msgs/msg/Quaternion"](x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])),
    )


def _pose_from(p, frame: str, child: str, subject: str) -> Pose:
    pos = np.array([p.position.x, p.position.y, p.position.z], dtype=np.float64)
    q = np.array([p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w], dtype=np.float64)
    return _checked_pose(pos, q, frame, child, subject)


def _checked_pose(pos, q, frame, child, subject) -> Pose:
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(q))):
        raise InputError("pose contains NaN or inf", subject=subject)
    n = float(np.linalg.norm(q))
    if n < 1e-9:
        raise InputError("pose quaternion is zero", subject=subject)
    return Pose(position=pos, orientation=q / n, frame=frame or "odom", child_frame=child or "base_link")


def pose_to_msg(header: Header, pose: Pose):
    """geometry_msgs/PoseStamped; header.frame_id is the frame the pose is expressed in."""
    return msg_class("geometry_msgs/msg/PoseStamped")(header=header_msg(header), pose=_pose_msg(pose))


def odometry_to_msg(header: Header, pose: Pose, *, covariance: float = 0.0):
    t = typestore().types
    cov = np.eye(6).ravel() * covariance
    return t["nav_msgs/msg/Odometry"](
        header=header_msg(header),
        child_frame_id=pose.child_frame,
        pose=t["geometry_msgs/msg/PoseWithCovariance"](pose=_pose_msg(pose), covariance=cov),
        twist=t["geometry_msgs/msg/TwistWithCovariance"](
            twist=t["geometry_msgs/msg/Twist"](
                linear=t["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0),
                angular=t["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0),
            ),
            covariance=np.zeros(36),
        ),
    )


def pose_from_msg(msg, *, topic: str | None = None, child_frame: str = "base_link") -> Pose:
    """perception.frame.Pose from PoseStamped, PoseWithCovarianceStamped, Odometry or TransformStamped
    (frame = header.frame_id; child = the message's child_frame_id, else `child_frame`)."""
    subject = _subject(topic)
    kind = getattr(msg, "__msgtype__", type(msg).__name__)
    frame = str(msg.header.frame_id) if hasattr(msg, "header") else ""
    if kind == "geometry_msgs/msg/PoseStamped":
        return _pose_from(msg.pose, frame, child_frame, subject)
    if kind == "geometry_msgs/msg/PoseWithCovarianceStamped":
        return _pose_from(msg.pose.pose, frame, child_frame, subject)
    if kind == "nav_msgs/msg/Odometry":
        return _pose_from(msg.pose.pose, frame, str(msg.child_frame_id) or child_frame, subject)
    if kind == "geometry_msgs/msg/TransformStamped":
        t = msg.transform
        pos = np.array([t.translation.x, t.translation.y, t.translation.z], dtype=np.float64)
        q = np.array([t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w], dtype=np.float64)
        return _checked_pose(pos, q, frame, str(msg.child_frame_id), subject)
    raise InputError(
        f"message type {kind} is not a pose",
        subject=subject,
        hint="use PoseStamped, PoseWithCovarianceStamped, Odometry or TransformStamped",
    )


POSE_TYPES = (
    "geometry_msgs/msg/PoseStamped",
    "geometry_msgs/msg/PoseWithCovarianceStamped",
    "nav_msgs/msg/Odometry",
    "geometry_msgs/msg/TransformStamped",
)


def transforms_to_msg(header: Header, transforms: Iterable[Pose]):
    """tf2_msgs/TFMessage: each Pose is the transform frame <- child_frame, stamped with `header.stamp_ns`."""
    t = typestore().types
    items = []
    for pose in transforms:
        pm = _pose_msg(pose)
        items.append(
            t["geometry_msgs/msg/TransformStamped"](
                header=header_msg(Header(header.stamp_ns, pose.frame)),
                child_frame_id=pose.child_frame,
                transform=t["geometry_msgs/msg/Transform"](
                    translation=t["geometry_msgs/msg/Vector3"](x=pm.position.x, y=pm.position.y, z=pm.position.z),
                    rotation=pm.orientation,
                ),
            )
        )
    return t["tf2_msgs/msg/TFMessage"](transforms=items)


def transforms_from_msg(msg, *, topic: str | None = None) -> list[Pose]:
    return [pose_from_msg(tr, topic=topic) for tr in msg.transforms]


# --------------------------------------------------------------------------------------------------------------
# Outputs: strings, occupancy grids, disparity, detections, diagnostics
# --------------------------------------------------------------------------------------------------------------
def string_to_msg(text: str):
    return msg_class("std_msgs/msg/String")(data=str(text))


def yaw_quaternion(yaw: float) -> np.ndarray:
    return np.array([0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0)])


def quaternion_yaw(q: Sequence[float]) -> float:
    x, y, z, w = (float(v) for v in q)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


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
        origin=_pose_msg(Pose(np.array([x, y, 0.0]), yaw_quaternion(yaw))),
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


@dataclass
class Detection2D:
    """One 2-D detection in image pixels (axis-aligned box by centre and size), as vision_msgs/Detection2D carries it.

    `position` is an optional 3-D position (m) in the header frame, e.g. from stereo range; it goes into the
    hypothesis pose (PoseWithCovariance) of the message, and `range_m` is derived from it when read back.
    """

    cx: float
    cy: float
    width: float
    height: float
    class_id: str
    score: float
    track_id: str = ""
    position: tuple[float, float, float] | None = None
    theta: float = 0.0

    @classmethod
    def from_corners(cls, x1: float, y1: float, x2: float, y2: float, class_id: str, score: float, **kw) -> "Detection2D":
        return cls(cx=(x1 + x2) / 2, cy=(y1 + y2) / 2, width=x2 - x1, height=y2 - y1, class_id=class_id, score=score, **kw)

    @property
    def corners(self) -> tuple[float, float, float, float]:
        return (self.cx - self.width / 2, self.cy - self.height / 2, self.cx + self.width / 2, self.cy + self.height / 2)

    @property
    def range_m(self) -> float | None:
        return None if self.position is None else float(np.linalg.norm(self.position))


@dataclass
class Detection3D:
    """One 3-D detection: box centre (m) and orientation (quaternion x, y, z, w) in the header frame, size (m)."""

    center: tuple[float, float, float]
    size: tuple[float, float, float]
    class_id: str
    score: float
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    track_id: str = ""


def as_detection2d(obj: Any) -> Detection2D:
    """Accept a Detection2D, a mapping with its fields, or any object with (cx, cy, width, height) or a `box` /
    `bbox` (x1, y1, x2, y2) plus class_id / label / class_name and score."""
    if isinstance(obj, Detection2D):
        return obj
    get = obj.get if isinstance(obj, Mapping) else (lambda k, d=None: getattr(obj, k, d))
    cls_id = next((get(k) for k in ("class_id", "label", "class_name", "name") if get(k) is not None), "")
    score = float(get("score", get("confidence", 0.0)))
    extra = {}
    pos = get("position")
    if pos is not None:
        extra["position"] = tuple(float(v) for v in pos)
    track = get("track_id")
    if track is not None:
        extra["track_id"] = str(track)
    if get("cx") is not None:
        return Detection2D(float(get("cx")), float(get("cy")), float(get("width")), float(get("height")), str(cls_id), score, **extra)
    box = get("box", get("bbox"))
    if box is not None:
        x1, y1, x2, y2 = (float(v) for v in box)
        return Detection2D.from_corners(x1, y1, x2, y2, str(cls_id), score, **extra)
    raise InputError(f"cannot read a 2-D detection from {type(obj).__name__}", subject="detections",
                     hint="use perception.io.Detection2D")


def _hypothesis(class_id: str, score: float, position=None, orientation=(0.0, 0.0, 0.0, 1.0)):
    t = typestore().types
    pos = np.zeros(3) if position is None else np.asarray(position, dtype=np.float64)
    return t["vision_msgs/msg/ObjectHypothesisWithPose"](
        hypothesis=t["vision_msgs/msg/ObjectHypothesis"](class_id=str(class_id), score=float(score)),
        pose=t["geometry_msgs/msg/PoseWithCovariance"](
            pose=_pose_msg(Pose(pos, np.asarray(orientation, dtype=np.float64))), covariance=np.zeros(36)
        ),
    )


def detections_to_msg(header: Header, detections: Iterable[Any]):
    """vision_msgs/Detection2DArray (one hypothesis per detection)."""
    t = typestore().types
    out = []
    for det in map(as_detection2d, detections):
        out.append(
            t["vision_msgs/msg/Detection2D"](
                header=header_msg(header),
                results=[_hypothesis(det.class_id, det.score, det.position)],
                bbox=t["vision_msgs/msg/BoundingBox2D"](
                    center=t["vision_msgs/msg/Pose2D"](
                        position=t["vision_msgs/msg/Point2D"](x=float(det.cx), y=float(det.cy)), theta=float(det.theta)
                    ),
                    size_x=float(det.width),
                    size_y=float(det.height),
                ),
                id=str(det.track_id),
            )
        )
    return t["vision_msgs/msg/Detection2DArray"](header=header_msg(header), detections=out)


def detections_from_msg(msg) -> list[Detection2D]:
    out = []
    for d in msg.detections:
        best = max(d.results, key=lambda r: r.hypothesis.score, default=None)
        position = None
        if best is not None:
            p = best.pose.pose.position
            if p.x or p.y or p.z:
                position = (float(p.x), float(p.y), float(p.z))
        c = d.bbox.center
        out.append(
            Detection2D(
                cx=float(c.position.x), cy=float(c.position.y), width=float(d.bbox.size_x), height=float(d.bbox.size_y),
                class_id=str(best.hypothesis.class_id) if best else "", score=float(best.hypothesis.score) if best else 0.0,
                track_id=str(d.id), position=position, theta=float(c.theta),
            )
        )
    return out


def detections3d_to_msg(header: Header, detections: Iterable[Detection3D]):
    t = typestore().types
    out = []
    for det in detections:
        pose = _pose_msg(Pose(np.asarray(det.center, dtype=np.float64), np.asarray(det.orientation, dtype=np.float64)))
        sx, sy, sz = (float(v) for v in det.size)
        out.append(
            t["vision_msgs/msg/Detection3D"](
                header=header_msg(header),
                results=[_hypothesis(det.class_id, det.score, det.center, det.orientation)],
                bbox=t["vision_msgs/msg/BoundingBox3D"](center=pose, size=t["geometry_msgs/msg/Vector3"](x=sx, y=sy, z=sz)),
                id=str(det.track_id),
            )
        )
    return t["vision_msgs/msg/Detection3DArray"](header=header_msg(header), detections=out)


def detections3d_from_msg(msg) -> list[Detection3D]:
    out = []
    for d in msg.detections:
        best = max(d.results, key=lambda r: r.hypothesis.score, default=None)
        c, q, s = d.bbox.center.position, d.bbox.center.orientation, d.bbox.size
        out.append(
            Detection3D(
                center=(float(c.x), float(c.y), float(c.z)), size=(float(s.x), float(s.y), float(s.z)),
                class_id=str(best.hypothesis.class_id) if best else "", score=float(best.hypothesis.score) if best else 0.0,
                orientation=(float(q.x), float(q.y), float(q.z), float(q.w)), track_id=str(d.id),
            )
        )
    return out


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
    "BASE_STORE", "CAMERA_ENCODINGS", "Detection2D", "Detection3D", "DiagnosticStatus", "DisparityData", "GridData",
    "POSE_TYPES", "as_detection2d", "camera_info_from_msg", "camera_info_to_msg",
    "compressed_from_msg", "compressed_to_msg", "deserialize", "detections3d_from_msg", "detections3d_to_msg",
    "detections_from_msg", "detections_to_msg", "diagnostics_from_msg", "diagnostics_to_msg", "disparity_from_msg",
    "disparity_to_msg", "encoding_info", "header_from_msg", "header_msg", "image_from_msg", "image_to_msg",
    "infer_encoding", "msg_class", "occupancy_grid_from_msg", "occupancy_grid_to_msg", "odometry_to_msg",
    "pose_from_msg", "pose_to_msg", "quaternion_yaw", "serialize", "stamp_ns", "string_to_msg", "time_msg",
    "to_pipeline", "transforms_from_msg", "transforms_to_msg", "typestore", "yaw_quaternion",
]
