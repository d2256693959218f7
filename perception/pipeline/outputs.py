"""Writing a `FrameResult` to a ROS 2 bag: the outputs, and optionally the (rectified) inputs copied through.

Topic names come from `perception.topics`; stamps and frame_id are the input frame's.
"""
from __future__ import annotations

import numpy as np

from perception import topics as T
from perception.io.bag_writer import BagWriter
from perception.frame import Header
from perception.pipeline.core import FrameResult


def ros_disparity(disparity: np.ndarray, min_d: float) -> np.ndarray:
    """stereo_image_proc's convention: invalid pixels carry a value below min_disparity (min_d - 1), not NaN."""
    return np.where(np.isfinite(disparity), disparity, np.float32(min_d - 1.0)).astype(np.float32)


def warning_statuses(warnings) -> list:
    """Collision warnings as diagnostic_msgs/DiagnosticStatus (the `warnings` topic: a standard type every ROS
    tool shows). Level WARN for a caution, ERROR for a warning; the values carry the numbers. An empty list
    (published every frame) says "nothing to warn about"."""
    from perception.io.messages import DiagnosticStatus

    return [DiagnosticStatus(name=f"perception/warnings/{w.kind}", level="ERROR" if w.level == "warning" else "WARN",
                             message=w.message, hardware_id=str(w.track_id),
                             values={"kind": w.kind, "level": w.level, "track_id": w.track_id, "class": w.class_id,
                                     "range_m": f"{w.range_m:.2f}", "ttc_s": f"{w.ttc_s:.2f}",
                                     "x_m": f"{w.position[0]:.2f}", "y_m": f"{w.position[1]:.2f}"})
            for w in warnings]


def write_result(writer: BagWriter, result: FrameResult, *, namespace: str = T.OUTPUT_NAMESPACE,
                 copy_inputs: bool = True, overlay: bool = True) -> None:
    """Write what `result` holds; a skipped frame writes nothing. `overlay`: also the composed `overlay` image
    (about 20 ms a frame at 640x480)."""
    if not result.ok:
        return
    frame, header = result.frame, result.header
    if copy_inputs:
        mono = frame.right is None
        image_topic, info_topic = (T.MONO_IMAGE, T.MONO_INFO) if mono else (T.LEFT_IMAGE, T.LEFT_INFO)
        writer.write_image(T.absolute(image_topic, namespace), header, frame.left)
        if frame.left_info is not None:
            writer.write_camera_info(T.absolute(info_topic, namespace), header, frame.left_info)
        if not mono:
            writer.write_image(T.absolute(T.RIGHT_IMAGE, namespace), header, frame.right)
            writer.write_camera_info(T.absolute(T.RIGHT_INFO, namespace), header, frame.right_info)
    d = result.disparity
    if d is not None and result.baseline_m is not None:
        valid = d.disparity[d.valid]
        min_d = float(np.floor(valid.min())) if valid.size else 0.0
        max_d = float(np.ceil(valid.max())) if valid.size else 1.0
        writer.write_disparity(
            T.absolute(T.DISPARITY, namespace), header, ros_disparity(d.disparity, min_d),
            f=frame.left_info.fx, baseline=result.baseline_m, min_d=min_d, max_d=max_d,
        )
    near = result.near
    if near is not None and near.labels is not None:
        writer.write_image(T.absolute(T.TERRAIN_LABELS, namespace), header, near.labels.image)
    far = result.terrain
    if far is not None and far.ok:
        writer.write_image(T.absolute(T.TERRAIN_CLASSES, namespace), header, far.classes)
    scene = result.scene
    if scene is not None:
        writer.write_image(T.absolute(T.SCENE_CLASS_MASK, namespace), header, scene.class_mask)
        writer.write_image(T.absolute(T.SCENE_COLOR_MASK, namespace), header, scene.color_mask)
    det = result.detections
    if det is not None:
        writer.write_detections(T.absolute(T.DETECTIONS, namespace), header, det.detections)
        writer.write_diagnostics(T.absolute(T.WARNINGS, namespace), header, warning_statuses(det.warnings))
    map_header = Header(header.stamp_ns, result.map_frame_id)
    for topic, grid in ((T.TERRAIN_COSTMAP, result.terrain_map), (T.MAP_COSTMAP, result.fused_map)):
        if grid is not None:
            writer.write_occupancy_grid(T.absolute(topic, namespace), map_header, grid.data, grid.resolution,
                                        grid.origin_xy_yaw)
    if overlay:
        from perception.viewer.overlay import compose

        writer.write_image(T.absolute(T.OVERLAY, namespace), header, compose(result))
