"""Topic names of the ROS 2 interface (DESIGN.md), written down once.

Names are relative, as the nodes use them (remappable, under the node's namespace). Bags written without
ROS (`perception replay`, `perception demo`) put them under `OUTPUT_NAMESPACE`.
"""
from __future__ import annotations

# inputs
LEFT_IMAGE = "left/image_rect"
RIGHT_IMAGE = "right/image_rect"
LEFT_IMAGE_RAW = "left/image_raw"
RIGHT_IMAGE_RAW = "right/image_raw"
LEFT_INFO = "left/camera_info"
RIGHT_INFO = "right/camera_info"
MONO_IMAGE = "image"
MONO_INFO = "camera_info"

# outputs
DISPARITY = "disparity"
TERRAIN_COSTMAP = "terrain/costmap"
TERRAIN_LABELS = "terrain/labels"
TERRAIN_CLASSES = "terrain/classes"
SCENE_CLASS_MASK = "scene/class_mask"
SCENE_COLOR_MASK = "scene/color_mask"
DETECTIONS = "detections"
WARNINGS = "warnings"
OVERLAY = "overlay"
MAP_COSTMAP = "map/costmap"
DIAGNOSTICS = "/diagnostics"

OUTPUT_NAMESPACE = "/perception"


def absolute(name: str, namespace: str = OUTPUT_NAMESPACE) -> str:
    """`disparity` -> `/perception/disparity`; names starting with '/' are already absolute."""
    return name if name.startswith("/") else f"{namespace.rstrip('/')}/{name}"
