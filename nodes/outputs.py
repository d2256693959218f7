"""What the nodes publish: output topics and their message types, QoS, and `RosWriter`, which makes
`perception.pipeline.outputs.write_result` publish exactly what it records in a replayed bag (docs/ros.md).

Nothing here imports rclpy; the node (perception_node) owns the publishers.
"""
from __future__ import annotations

from typing import Any

from perception import topics as T
from perception.io.bag_writer import BagWriter
from perception.io.qos import LATCHED_QOS, RELIABLE_QOS

IMAGE = "sensor_msgs/msg/Image"
GRID = "nav_msgs/msg/OccupancyGrid"
DETECTIONS_TYPE = "vision_msgs/msg/Detection2DArray"
DETECTIONS_FALLBACK = "std_msgs/msg/String"
DIAGNOSTICS = "diagnostic_msgs/msg/DiagnosticArray"

#: output topic -> message type (detections: vision_msgs where installed, else JSON in std_msgs/String)
OUTPUT_TYPES = {
    T.DISPARITY: "stereo_msgs/msg/DisparityImage",
    T.TERRAIN_LABELS: IMAGE,
    T.TERRAIN_CLASSES: IMAGE,
    T.TERRAIN_COSTMAP: GRID,
    T.SCENE_CLASS_MASK: IMAGE,
    T.SCENE_COLOR_MASK: IMAGE,
    T.DETECTIONS: DETECTIONS_TYPE,
    T.WARNINGS: DIAGNOSTICS,  # one DiagnosticStatus per collision warning (perception.pipeline.outputs)
    T.OVERLAY: IMAGE,
    T.MAP_COSTMAP: GRID,
}
STAGE_OUTPUTS = {
    "stereo": (T.DISPARITY,),
    "terrain": (T.TERRAIN_LABELS, T.TERRAIN_CLASSES, T.TERRAIN_COSTMAP),
    "detect": (T.DETECTIONS, T.WARNINGS),
}
#: the optional stages of the core and the outputs that need them (a node runs a stage only for its outputs)
STAGE_NEEDED_BY = {
    "terrain": {T.TERRAIN_LABELS, T.TERRAIN_CLASSES, T.TERRAIN_COSTMAP, T.MAP_COSTMAP, T.OVERLAY},
    "scene": {T.SCENE_CLASS_MASK, T.SCENE_COLOR_MASK, T.MAP_COSTMAP, T.OVERLAY},
    "detect": {T.DETECTIONS, T.WARNINGS, T.MAP_COSTMAP, T.OVERLAY},
}
REL_NAMESPACE = "/__perception_relative__"  # namespace handed to write_result; stripped again by RosWriter


def output_qos(topic: str, msgtype: str):
    """Maps: reliable + transient local (a late planner gets the last map). Everything else: reliable, volatile
    (a reliable publisher serves both reliable and best-effort subscribers, e.g. rviz and image_view)."""
    return LATCHED_QOS if msgtype == GRID else RELIABLE_QOS


class RosWriter:
    """Duck-types `BagWriter`'s typed writers (write_image, write_disparity, write_occupancy_grid, ...) so that
    `write_result` publishes exactly what it would record; `write_message` publishes instead of writing."""

    def __init__(self, node: Any) -> None:
        self.node = node  # the PerceptionNode: wants(topic), publish(topic, msg), counters

    @staticmethod
    def _relative(topic: str) -> str:
        return topic[len(REL_NAMESPACE) + 1:] if topic.startswith(REL_NAMESPACE + "/") else topic

    def write_message(self, topic: str, msg: Any, timestamp_ns: int | None = None, *, static: bool = False) -> None:
        self.node.publish(self._relative(topic), msg)


def _gated(name: str):
    fn = getattr(BagWriter, name)

    def method(self: RosWriter, topic: str, *args, **kwargs):
        rel = self._relative(topic)
        if not self.node.wants(rel):
            self.node.counters.output(rel, False)
            return None
        return fn(self, topic, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = fn.__doc__
    return method


for _name in ("write_image", "write_compressed_image", "write_camera_info", "write_pose", "write_odometry",
              "write_transforms", "write_string", "write_occupancy_grid", "write_disparity", "write_detections",
              "write_detections3d", "write_diagnostics"):
    setattr(RosWriter, _name, _gated(_name))


__all__ = ["DETECTIONS_FALLBACK", "DETECTIONS_TYPE", "DIAGNOSTICS", "GRID", "IMAGE", "OUTPUT_TYPES", "REL_NAMESPACE",
           "RosWriter", "STAGE_NEEDED_BY", "STAGE_OUTPUTS", "output_qos"]
