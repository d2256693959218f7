"""`perception replay IN_BAG --out OUT_BAG`: process a ROS 2 bag (MCAP or sqlite3) offline, without ROS."""
from __future__ import annotations

import argparse
import sys

from perception.cli.common import print_json
from perception.errors import InputError
from perception.viewer.cli import add_viewer_arguments, viewer_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "replay",
        help="process a ROS 2 bag (.mcap or .db3) offline and write the outputs",
        description="Process a ROS 2 bag offline (no ROS needed) and write every output topic, with the input "
        "stamps and frame_id, to a new bag that `ros2 bag play` can feed to a planner or a visualiser.",
    )
    p.add_argument("bag", help="input bag: a rosbag2 folder, or a .mcap / .db3 file")
    p.add_argument("--out", required=True, help="output bag folder (.mcap or .db3 suffix picks the storage)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output bag")
    p.add_argument("--rate", type=float, default=0.0, help="0: as fast as possible (default); 1.0: recorded rate")
    p.add_argument("--no-copy-inputs", dest="copy_inputs", action="store_false",
                   help="do not copy the (rectified) input images and camera_info into the output bag")
    p.add_argument("--no-overlay", dest="overlay", action="store_false",
                   help="do not write the composed overlay image (saves ~20 ms a frame at 640x480)")
    p.add_argument("--left-topic", help="left image topic (default: detected)")
    p.add_argument("--right-topic", help="right image topic (default: detected)")
    p.add_argument("--left-calibration", help="camera_info YAML for the left camera (when the bag has none)")
    p.add_argument("--right-calibration", help="camera_info YAML for the right camera (when the bag has none)")
    add_viewer_arguments(p)
    p.add_argument("--params", help="parameter YAML (/**: ros__parameters:), the nodes' file, e.g. "
                   "launch/perception.yaml; pipeline parameters are applied, the nodes' own are ignored")
    p.add_argument("--json", action="store_true", help="the last stdout line is the summary as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.rate < 0:
        raise InputError("must be >= 0", subject="--rate")
    from perception.pipeline.core import Pipeline
    from perception.pipeline.offline import run_offline

    from perception.pipeline.params_file import config_for_command

    pipeline = Pipeline(config_for_command(args.params, "replay"))
    from perception.sources.bag import BagSource

    source = BagSource(args.bag, left_topic=args.left_topic, right_topic=args.right_topic,
                       left_calibration=args.left_calibration, right_calibration=args.right_calibration)
    with viewer_from_args(args, "replay") as viewer:
        summary = run_offline(source, args.out, pipeline=pipeline, overwrite=args.overwrite,
                              copy_inputs=args.copy_inputs,
                              rate=args.rate, on_result=viewer.publish if viewer is not None else None,
                              overlay=args.overlay)
    print(summary.text(), file=sys.stderr)
    if args.json:
        print_json(summary.to_dict())
    return 0 if summary.used else 1
