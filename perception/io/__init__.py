"""Message conversions and the ROS 2 bag writer (no rclpy: rosbags' type system).

* `perception.io.messages`: numpy / dataclasses <-> ROS 2 message objects (images, camera_info, poses, grids,
  disparity, detections, diagnostics, tf), with the image conventions documented there.
* `perception.io.bag_writer.BagWriter`: writes all of it to a rosbag2 bag (MCAP or sqlite3) with QoS metadata.
"""
from perception.io.bag_writer import BagWriteError, BagWriter, QosProfile, qos_for, resolve_bag_path
from perception.io.messages import Detection2D, Detection3D, DiagnosticStatus, DisparityData, GridData

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
