"""The QoS each recorded topic offers, so `ros2 bag play` republishes it the way a live robot would.

Rules (`qos_for`): sensor data (Image, CompressedImage, CameraInfo, DisparityImage) best effort + volatile,
depth 5; maps (OccupancyGrid, any topic ending in `map` / `costmap`) and `/tf_static` reliable + transient local,
depth 1; everything else reliable + volatile (depth 100 for /tf, 10 otherwise). `BagWriter(qos_overrides=...)`
overrides them per topic with a `QosProfile` or one of the names in `NAMED_QOS`.

Profiles reach the bag as rosbags `Qos` values; rosbags writes them into metadata.yaml (rosbag2 metadata v8) and
into the MCAP channel metadata.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2.metadata import dump_qos_v8

_ZERO = QosTime(0, 0)  # zero durations mean "default", i.e. infinite


@dataclass(frozen=True)
class QosProfile:
    reliability: str = "reliable"  # reliable | best_effort
    durability: str = "volatile"  # volatile | transient_local
    depth: int = 10

    def to_rosbags(self) -> Qos:
        """As rosbags' Qos: keep last `depth`, automatic liveliness, default (zero = infinite) durations."""
        reliability = {"reliable": QosReliability.RELIABLE, "best_effort": QosReliability.BEST_EFFORT}
        durability = {"transient_local": QosDurability.TRANSIENT_LOCAL, "volatile": QosDurability.VOLATILE}
        return Qos(
            history=QosHistory.KEEP_LAST,
            depth=int(self.depth),
            reliability=reliability[self.reliability],
            durability=durability[self.durability],
            deadline=_ZERO,
            lifespan=_ZERO,
            liveliness=QosLiveliness.AUTOMATIC,
            liveliness_lease_duration=_ZERO,
            avoid_ros_namespace_conventions=False,
        )


SENSOR_QOS = QosProfile("best_effort", "volatile", 5)
LATCHED_QOS = QosProfile("reliable", "transient_local", 1)
RELIABLE_QOS = QosProfile("reliable", "volatile", 10)
TF_QOS = QosProfile("reliable", "volatile", 100)
NAMED_QOS = {"sensor": SENSOR_QOS, "latched": LATCHED_QOS, "map": LATCHED_QOS, "reliable": RELIABLE_QOS, "tf": TF_QOS}

SENSOR_TYPES = {
    "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/CameraInfo",
    "stereo_msgs/msg/DisparityImage",
}


def qos_for(topic: str, msgtype: str, *, static: bool = False) -> QosProfile:
    """The QoS a topic is recorded with (see the module doc)."""
    name = topic.rstrip("/").rsplit("/", 1)[-1]
    if static or topic.rstrip("/").endswith("tf_static") or msgtype == "nav_msgs/msg/OccupancyGrid":
        return LATCHED_QOS
    if msgtype in SENSOR_TYPES:
        return SENSOR_QOS
    if name in ("map", "costmap") or name.endswith(("_map", "_costmap")):
        return LATCHED_QOS
    if msgtype == "tf2_msgs/msg/TFMessage":
        return TF_QOS
    return RELIABLE_QOS


def as_profile(qos: QosProfile | str) -> QosProfile:
    """A profile, or one named in `NAMED_QOS`."""
    return NAMED_QOS[qos] if isinstance(qos, str) else qos


def dump_qos(profiles: Iterable[QosProfile]) -> str:
    """The offered_qos_profiles text rosbags writes for these profiles (metadata v8, MCAP channel metadata)."""
    return dump_qos_v8([p.to_rosbags() for p in profiles])


__all__ = [
    "LATCHED_QOS", "NAMED_QOS", "QosProfile", "RELIABLE_QOS", "SENSOR_QOS", "SENSOR_TYPES", "TF_QOS", "as_profile",
    "dump_qos", "qos_for",
]
