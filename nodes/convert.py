"""Messages between rclpy and the ROS-free core, without a second copy of any conversion.

The core (`perception.io.messages`, `perception.io.encodings`) already converts every message the product uses
to and from numpy / dataclasses, on rosbags message objects. A node therefore moves messages across the rclpy
boundary as CDR bytes: subscriptions are created with `raw=True` and `decode` turns the bytes into the core's
message object; outputs are built by the core and published as bytes (`encode`; `Publisher.publish` takes
`bytes`). The rosbags type definitions are the ROS 2 ones (identical in Humble, Jazzy and Kilted for the types
used here), so the bytes on the wire are what an rclcpp node would send. rclpy message classes are only used as
type support (`msg_type`) and, for tests and tools, `to_rclpy` / `from_rclpy` go through the same bytes.

QoS: the profiles are named once, as plain data, in `perception.io.qos`; `qos_profile` makes rclpy's from them.
"""
from __future__ import annotations

import importlib
import json
from typing import Any

from perception.io import messages as M
from perception.io.qos import QosProfile, as_profile


def msg_type(msgtype: str):
    """The rclpy message class of "pkg/msg/Name" (ImportError when the package is not installed)."""
    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


def has_msg_type(msgtype: str) -> bool:
    try:
        msg_type(msgtype)
    except (ImportError, AttributeError, ValueError):
        return False
    return True


def decode(raw: bytes, msgtype: str) -> Any:
    """The core's (rosbags) message object of CDR bytes received by a raw subscription."""
    return M.deserialize(raw, msgtype)


def encode(msg: Any) -> bytes:
    """CDR bytes of a core (rosbags) message object, ready for `Publisher.publish`."""
    return M.serialize(msg)


def to_rclpy(msg: Any):
    """An rclpy message equal to a core (rosbags) message object."""
    from rclpy.serialization import deserialize_message

    return deserialize_message(encode(msg), msg_type(msg.__msgtype__))


def from_rclpy(msg: Any, msgtype: str | None = None) -> Any:
    """The core (rosbags) message object equal to an rclpy message."""
    from rclpy.serialization import serialize_message

    if msgtype is None:
        module = type(msg).__module__.split(".")  # e.g. sensor_msgs.msg._image
        msgtype = f"{module[0]}/msg/{type(msg).__name__}"
    return decode(serialize_message(msg), msgtype)


def qos_profile(profile: QosProfile | str):
    """rclpy QoSProfile (keep last `depth`) of a profile of `perception.io.qos` (or one of its names)."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    p = as_profile(profile)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=int(p.depth),
        reliability=ReliabilityPolicy.RELIABLE if p.reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT,
        durability=(DurabilityPolicy.TRANSIENT_LOCAL if p.durability == "transient_local"
                    else DurabilityPolicy.VOLATILE),
    )


def detections_json(msg: Any) -> str:
    """vision_msgs/Detection2DArray (core object) as the JSON the `detections` fallback (std_msgs/String) carries
    where vision_msgs is not installed: {"stamp_ns", "frame_id", "detections": [{class_id, score, cx, cy, width,
    height, track_id, position, range_m}]}."""
    dets = []
    for d in M.detections_from_msg(msg):
        dets.append({"class_id": d.class_id, "score": d.score, "cx": d.cx, "cy": d.cy, "width": d.width,
                     "height": d.height, "track_id": d.track_id,
                     "position": None if d.position is None else list(d.position), "range_m": d.range_m})
    return json.dumps({"stamp_ns": M.stamp_ns(msg.header.stamp), "frame_id": str(msg.header.frame_id),
                       "detections": dets})


__all__ = ["decode", "detections_json", "encode", "from_rclpy", "has_msg_type", "msg_type", "qos_profile",
           "to_rclpy"]
