"""`perception sim record`: write a synthetic stereo drive with ground truth as a ROS 2 bag.

Topics (stamps = the frame's header stamp; all remappable by the tools that read the bag):

    /stereo/left/image_rect, /stereo/right/image_rect      sensor_msgs/Image bgr8 (rectified pair)
    /stereo/left/camera_info, /stereo/right/camera_info    sensor_msgs/CameraInfo (right: P[0,3] = -fx * baseline)
    /odom                                                  nav_msgs/Odometry odom -> base_link
    /tf                                                    tf2_msgs/TFMessage odom -> base_link, every frame
    /tf_static                                             base_link -> left / right_camera_optical_frame (latched)
    /ground_truth/depth, /ground_truth/disparity           32FC1 (left image; depth inf / disparity 0 for sky)
    /ground_truth/terrain_class, /ground_truth/semantic    mono8 (code tables in perception.sim)
    /ground_truth/traversability                           32FC1 0..1, NaN for sky
    /ground_truth/instance                                 32SC1 object id per pixel, -1 none
    /ground_truth/objects                                  std_msgs/String JSON {"frame_index", "stamp_ns",
                                                           "frame_id", "objects": [...]} (object schema: perception.sim)
    /ground_truth/frame                                    std_msgs/String JSON: frame_index, time_s, roll, pitch,
                                                           yaw, change, lighting, horizon_row, camera_pose (4x4)
    /ground_truth/map                                      nav_msgs/OccupancyGrid (odom; 0..100 = 100 * (1 - trav.))
    /ground_truth/map_terrain_class                        mono8 image of the map's terrain classes (same grid)
    /ground_truth/map_info                                 std_msgs/String JSON: resolution, origin, width, height
The three map topics are written with the first frame and again when the map changes (change_frame).
"""
from __future__ import annotations

import argparse
import json
import sys


def register(verbs) -> None:
    parser = verbs.add_parser(
        "record", help="write a synthetic stereo drive with ground truth as a ROS 2 bag",
        description="Render a deterministic synthetic stereo drive and write it, with ground truth, as a ROS 2 bag.",
        epilog="The bag path is a directory (rosbag2); a .mcap or .db3 suffix picks the storage.",
    )
    parser.add_argument("--out", required=True, help="bag directory to create")
    parser.add_argument("--frames", type=int, required=True, help="number of stereo frames")
    parser.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    parser.add_argument("--size", default="640x480", help="image size WxH (default 640x480)")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default=None,
                        help="bag storage (default: from the --out suffix, else mcap)")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate of the stamps (default 10)")
    parser.add_argument("--change-frame", type=int, default=None, help="frame at which the world changes (default N/2)")
    parser.add_argument("--change", choices=("appearance", "new_class", "none"), default="appearance",
                        help="what changes at --change-frame (default appearance)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag at --out")
    parser.set_defaults(func=run)


def _frame_json(frame) -> str:
    t = frame.truth
    return json.dumps({
        "frame_index": frame.index, "stamp_ns": frame.header.stamp_ns, "time_s": t["time_s"],
        "roll": t["roll"], "pitch": t["pitch"], "yaw": t["yaw"], "velocity": [float(v) for v in t["velocity"]],
        "change": t["change"], "lighting": t["lighting"],
        "horizon_row": [round(float(v), 3) for v in t["horizon_row"]],
        "camera_pose": [[float(v) for v in row] for row in t["camera_pose"]],
    })


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from perception.errors import InputError
    from perception.frame import Header, Pose
    from perception.io.bag_writer import BagWriter
    from perception.sim import LEFT_FRAME, RIGHT_FRAME, SimConfig, SimWorld
    from perception.sim.config import parse_size
    from perception.sim.drive import quaternion

    if args.frames < 1:
        raise InputError("--frames must be at least 1", subject="perception sim record")
    try:
        size = parse_size(args.size)
        cfg = SimConfig.with_size(size, seed=args.seed, frames=args.frames, fps=args.fps,
                                  change_frame=args.change_frame, change=args.change)
    except ValueError as err:
        raise InputError(str(err), subject="perception sim record") from err
    world = SimWorld(cfg)

    def static(T, child):
        return Pose(position=T[:3, 3].copy(), orientation=quaternion(T[:3, :3]), frame="base_link", child_frame=child)

    last_map = None
    with BagWriter(args.out, storage=args.storage, overwrite=args.overwrite) as bag:
        for i in tqdm(range(cfg.frames), desc="sim record", unit="frame", file=sys.stderr, disable=None):
            f = world.render(i)
            h, t = f.header, f.truth
            right_h = Header(h.stamp_ns, RIGHT_FRAME)
            if i == 0:
                bag.write_transforms("/tf_static", h, [static(world.T_base_left, LEFT_FRAME),
                                                       static(world.T_base_right, RIGHT_FRAME)], static=True)
            bag.write_image("/stereo/left/image_rect", h, f.left, "bgr8")
            bag.write_image("/stereo/right/image_rect", right_h, f.right, "bgr8")
            bag.write_camera_info("/stereo/left/camera_info", h, f.left_info)
            bag.write_camera_info("/stereo/right/camera_info", right_h, f.right_info)
            odom_h = Header(h.stamp_ns, "odom")
            bag.write_odometry("/odom", odom_h, f.pose)
            bag.write_transforms("/tf", odom_h, [f.pose])
            bag.write_image("/ground_truth/depth", h, t["depth"], "32FC1")
            bag.write_image("/ground_truth/disparity", h, t["disparity"], "32FC1")
            bag.write_image("/ground_truth/terrain_class", h, t["terrain_class"], "mono8")
            bag.write_image("/ground_truth/semantic", h, t["semantic"], "mono8")
            bag.write_image("/ground_truth/traversability", h, t["traversability"], "32FC1")
            bag.write_image("/ground_truth/instance", h, t["instance"], "32SC1")
            bag.write_string("/ground_truth/objects", h, json.dumps(
                {"frame_index": i, "stamp_ns": h.stamp_ns, "frame_id": h.frame_id, "objects": t["objects"]}))
            bag.write_string("/ground_truth/frame", h, _frame_json(f))
            if t["map"] is not last_map:
                m = last_map = t["map"]
                occupancy = np.clip(np.round(100.0 * (1.0 - m["traversability"])), 0, 100).astype(np.int8)
                bag.write_occupancy_grid("/ground_truth/map", odom_h, occupancy, m["resolution"], (*m["origin"], 0.0))
                bag.write_image("/ground_truth/map_terrain_class", odom_h, m["terrain_class"], "mono8")
                bag.write_string("/ground_truth/map_info", odom_h, json.dumps({
                    "resolution": m["resolution"], "origin": list(m["origin"]), "width": m["width"],
                    "height": m["height"], "frame_id": m["frame_id"], "frame_index": i}))
    counts = bag.message_counts
    print(f"perception sim record: wrote {cfg.frames} stereo frames ({cfg.width}x{cfg.height}, seed {cfg.seed}) "
          f"and {sum(counts.values())} messages on {len(counts)} topics to {args.out}", file=sys.stderr)
    return 0
