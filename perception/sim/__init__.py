"""Synthetic outdoor drive rendered as a calibrated stereo pair with full ground truth (issue 3).

    >>> from perception.sim import SimConfig, SimWorld
    >>> world = SimWorld(SimConfig(seed=0, width=320, height=240, frames=50))
    >>> frame = world.render(10)        # perception.frame.Frame
    >>> frame.truth["depth"].shape
    (240, 320)

The world is a pure function of the config (seed included): frames can be rendered in any order, and equal configs
give identical frames. See docs/sim.md for pictures and measured speed.

Frames (REP-103 / REP-105): odom = world frame, z up, origin at base_link of frame 0; base_link: x forward, y left,
z up, on the ground under the vehicle; left_camera_optical_frame: z forward, x right, y down, `camera_height` above
the ground and pitched down by `pitch_deg`; the right camera is `baseline` along the left camera's x axis.
Both images are rectified: CameraInfo.from_intrinsics(...) for the left, with baseline=B for the right
(P[0,3] = -fx * B). fx = fy = (width / 2) / tan(hfov / 2), cx = (width - 1) / 2, cy = (height - 1) / 2.

Frame fields: header (stamp_ns = epoch_ns + i / fps, frame_id "left_camera_optical_frame"), left / right (HxWx3
uint8 BGR), left_info / right_info, pose (perception.frame.Pose odom -> base_link), index, truth.

truth keys (all images HxW, registered to the LEFT image):
    depth            float32, metres along the optical axis (Z), inf for sky
    disparity        float32, = fx * baseline / depth (exactly, in float32), 0 for sky
    depth_right      float32, Z in the right camera
    terrain_class    uint8, TERRAIN_CLASSES code of the surface (ground or static obstacle), 255 sky / actors
    traversability   float32 0..1 (TRAVERSABILITY of the terrain class), 0 on actors, NaN for sky
    semantic         uint8, SEMANTIC_CLASSES code
    instance         int32, object id per pixel, -1 for ground and sky
    objects          list of dicts, see below
    camera_pose      4x4 odom <- left optical frame;  camera_pose_right the same for the right camera
    T_base_camera    4x4 base_link <- left optical frame (static)
    horizon_row      float32 (W,), image row of the true horizon (zero elevation in odom) in each column
    roll, pitch, yaw base_link attitude in odom (rad, REP-103);  velocity: base_link velocity in odom (m/s)
    frame_index, time_s
    change           {"frame": K, "kind": "appearance"|"new_class"|"none", "class": code, "class_name", "active"}
    change_frame     K (the first frame of the changed world)
    lighting         {"sun": strength, "exposure": camera gain, "sun_direction": [x, y, z] in odom}
    map              top-down map of the world as it is at this frame (SimWorld.traversability_map)

Terrain classes (truth["terrain_class"]; traversability; semantic):
    0 path (dirt road)  1.00 road        4 tall_grass (and bushes) 0.50 vegetation
    1 short_grass       0.90 ground      5 rocks (ground and rocks)  0.10 obstacle
    2 gravel            0.75 ground      6 trees (trunks, crowns)    0.00 vegetation
    3 mud               0.35 ground      7 walls                     0.00 obstacle
    255 sky or an actor (pedestrian, cyclist, car, truck)
Semantic classes: 0 sky, 1 road, 2 ground, 3 vegetation, 4 obstacle, 5 pedestrian, 6 cyclist, 7 car, 8 truck.
Cost for a planner: COST[c] = round(254 * (1 - traversability)) (Nav2 convention, 254 lethal).

Each object dict: id, cls ("pedestrian"|"cyclist"|"car"|"truck"|"tree"|"rock"|"wall"|"bush"), semantic,
terrain_class, dynamic (bool), size [length, width, height] (m), yaw (rad, odom), position_world [x, y, z] (centre of
its 3D box, odom), position_camera [x, y, z] (the same point in the left optical frame), velocity_world,
velocity_camera (the world velocity expressed in camera axes, not relative to the camera), distance (m, camera to
centre), box2d [x0, y0, x1, y1] (projection of the 3D box, clipped to the image, pixels), box2d_visible (tight box
of its visible pixels or None), pixels_visible, pixels_unoccluded (pixels it would cover with nothing in front),
occlusion (1 - visible / unoccluded), truncation (share of the projected box outside the image).
Listed: every actor whose box projects into the image within 300 m (even fully occluded), and every static obstacle
with visible pixels within 200 m.
"""
from perception.sim.config import (
    COST,
    SEMANTIC_CLASSES,
    SEMANTIC_COLORS,
    TERRAIN_CLASSES,
    TERRAIN_COLORS,
    TERRAIN_NONE,
    TRAVERSABILITY,
    SimConfig,
)
from perception.sim.world import LEFT_FRAME, RIGHT_FRAME, SimWorld

__all__ = [
    "COST", "LEFT_FRAME", "RIGHT_FRAME", "SEMANTIC_CLASSES", "SEMANTIC_COLORS", "SimConfig", "SimWorld",
    "TERRAIN_CLASSES", "TERRAIN_COLORS", "TERRAIN_NONE", "TRAVERSABILITY",
]
