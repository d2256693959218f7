"""Message conversions and the ROS 2 bag writer (no rclpy: rosbags' type system and rosbag2 writer).

* `perception.io.messages`: numpy / dataclasses <-> ROS 2 message objects (images, camera_info, poses, grids,
  disparity, detections, diagnostics, tf); it re-exports `typestore`, `encodings`, `geometry` and `detections`.
* `perception.io.bag_writer.BagWriter`: writes all of it to a rosbag2 bag (MCAP or sqlite3) through rosbags'
  Writer (`perception.io.bag_storage`), with QoS metadata (`perception.io.qos`).
"""
from perception.io.bag_writer import BagWriteError, BagWriter, resolve_bag_path
from perception.io.detections import Detection2D, Detection3D
from perception.io.messages import DiagnosticStatus, DisparityData, GridData
from perception.io.qos import QosProfile, qos_for

__all__ = [
    "BagWriteError",
    "BagWriter",
    "Detection2D",
    "Detection3D",
    "DiagnosticStatus",
    "DisparityData",
    "GridData",
    "QosProfile",
    "qos_for",
    "resolve_bag_path",
]
