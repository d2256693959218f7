"""2-D and 3-D object detections without ROS, and their vision_msgs (4.x) Detection2DArray / Detection3DArray form.

Each detection becomes one message detection with a single hypothesis (class_id, score); reading keeps the
best-scoring hypothesis. The vision_msgs definitions are registered in `perception.io.typestore`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from perception.errors import InputError
from perception.frame import Header, Pose
from perception.io.geometry import pose_msg
from perception.io.typestore import header_msg, typestore


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
            pose=pose_msg(Pose(pos, np.asarray(orientation, dtype=np.float64))), covariance=np.zeros(36)
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


def _best(detection) -> tuple[str, float, Any]:
    """(class_id, score, hypothesis) of a message detection's best hypothesis; ("", 0.0, None) without one."""
    best = max(detection.results, key=lambda r: r.hypothesis.score, default=None)
    if best is None:
        return "", 0.0, None
    return str(best.hypothesis.class_id), float(best.hypothesis.score), best


def detections_from_msg(msg) -> list[Detection2D]:
    out = []
    for d in msg.detections:
        class_id, score, best = _best(d)
        position = None
        if best is not None:
            p = best.pose.pose.position
            if p.x or p.y or p.z:
                position = (float(p.x), float(p.y), float(p.z))
        c = d.bbox.center
        out.append(
            Detection2D(
                cx=float(c.position.x), cy=float(c.position.y), width=float(d.bbox.size_x), height=float(d.bbox.size_y),
                class_id=class_id, score=score, track_id=str(d.id), position=position, theta=float(c.theta),
            )
        )
    return out


def detections3d_to_msg(header: Header, detections: Iterable[Detection3D]):
    t = typestore().types
    out = []
    for det in detections:
        pose = pose_msg(Pose(np.asarray(det.center, dtype=np.float64), np.asarray(det.orientation, dtype=np.float64)))
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
        class_id, score, _ = _best(d)
        c, q, s = d.bbox.center.position, d.bbox.center.orientation, d.bbox.size
        out.append(
            Detection3D(
                center=(float(c.x), float(c.y), float(c.z)), size=(float(s.x), float(s.y), float(s.z)),
                class_id=class_id, score=score, orientation=(float(q.x), float(q.y), float(q.z), float(q.w)), track_id=str(d.id),
            )
        )
    return out


__all__ = [
    "Detection2D", "Detection3D", "as_detection2d", "detections3d_from_msg", "detections3d_to_msg",
    "detections_from_msg", "detections_to_msg",
]
