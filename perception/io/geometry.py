"""Poses and transforms <-> ROS 2 messages: PoseStamped, PoseWithCovarianceStamped, Odometry, TransformStamped,
tf2_msgs/TFMessage, and yaw <-> quaternion for planar poses.

A `perception.frame.Pose` is the transform frame <- child_frame; quaternions are (x, y, z, w). NaN / inf or a zero
quaternion in an incoming message raises `perception.errors.InputError` naming the topic.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from perception.errors import InputError
from perception.frame import Header, Pose
from perception.io.typestore import header_msg, msg_class, typestore
from perception.io.typestore import subject as _subject


def pose_msg(pose: Pose):
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
    return msg_class("geometry_msgs/msg/PoseStamped")(header=header_msg(header), pose=pose_msg(pose))


def odometry_to_msg(header: Header, pose: Pose, *, covariance: float = 0.0):
    t = typestore().types
    cov = np.eye(6).ravel() * covariance
    return t["nav_msgs/msg/Odometry"](
        header=header_msg(header),
        child_frame_id=pose.child_frame,
        pose=t["geometry_msgs/msg/PoseWithCovariance"](pose=pose_msg(pose), covariance=cov),
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
        pm = pose_msg(pose)
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


def yaw_quaternion(yaw: float) -> np.ndarray:
    return np.array([0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0)])


def quaternion_yaw(q: Sequence[float]) -> float:
    x, y, z, w = (float(v) for v in q)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


__all__ = [
    "POSE_TYPES", "odometry_to_msg", "pose_from_msg", "pose_msg", "pose_to_msg", "quaternion_yaw", "transforms_from_msg",
    "transforms_to_msg", "yaw_quaternion",
]
