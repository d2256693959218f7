"""The one rosbags typestore every message goes through, CDR (de)serialisation, and header / time messages.

`typestore()` is rosbags' ROS 2 Humble store (the message definitions used here are identical in Humble, Iron,
Jazzy and Kilted, so the type hashes match a robot's) plus vision_msgs (ROS 2 vision_msgs 4.x), registered from
the .msg text below because rosbags does not bundle it. No rclpy is needed anywhere.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from perception.frame import Header

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


def _store_with(definitions: dict[str, str]):
    store = get_typestore(BASE_STORE)
    types: dict = {}
    for name, text in definitions.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


@lru_cache(maxsize=1)
def typestore():
    """The shared rosbags typestore: ROS 2 Humble standard messages + vision_msgs."""
    return _store_with(VISION_MSGS)


def type_hash(msgtype: str, msgdef: str) -> str:
    """The RIHS01 type hash of a type given by its rosbag2 message definition (the .msg text, dependencies
    appended the way rosbag2 stores them). Raises ValueError when the text cannot be parsed."""
    try:
        store = _store_with({**VISION_MSGS, msgtype: msgdef})
        return store.hash_rihs01(msgtype)
    except Exception as err:  # noqa: BLE001 - rosbags raises several kinds for bad definitions
        raise ValueError(f"cannot parse the definition of {msgtype}: {err}") from err


def msg_class(msgtype: str):
    return typestore().types[msgtype]


def serialize(msg: Any, msgtype: str | None = None) -> bytes:
    """CDR bytes of a message object (msgtype defaults to the object's own)."""
    return bytes(typestore().serialize_cdr(msg, msgtype or msg.__msgtype__))


def deserialize(rawdata: bytes, msgtype: str) -> Any:
    return typestore().deserialize_cdr(rawdata, msgtype)


# --- header / time ----------------------------------------------------------------------------------------------
def time_msg(stamp_ns: int):
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return msg_class("builtin_interfaces/msg/Time")(sec=sec, nanosec=nanosec)


def stamp_ns(time) -> int:
    return int(time.sec) * 1_000_000_000 + int(time.nanosec)


def header_msg(header: Header):
    return msg_class("std_msgs/msg/Header")(stamp=time_msg(header.stamp_ns), frame_id=str(header.frame_id))


def header_from_msg(msg) -> Header:
    return Header(stamp_ns=stamp_ns(msg.stamp), frame_id=str(msg.frame_id))


def subject(topic: str | None, encoding: str | None = None) -> str:
    """How an error names the message it is about ("topic /x, encoding rgb8")."""
    parts = [p for p in (f"topic {topic}" if topic else None, f"encoding {encoding}" if encoding else None) if p]
    return ", ".join(parts) or "image"


__all__ = [
    "BASE_STORE", "VISION_MSGS", "deserialize", "header_from_msg", "header_msg", "msg_class", "serialize", "stamp_ns",
    "subject", "time_msg", "type_hash", "typestore",
]
