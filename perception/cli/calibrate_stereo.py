"""`perception calibrate stereo`: chessboard stereo calibration -> ROS camera_info YAMLs (left.yaml, right.yaml)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perception.cli.common import print_json


def register(verbs) -> None:
    parser = verbs.add_parser(
        "stereo",
        help="chessboard stereo calibration -> camera_info YAMLs",
        description=(
            "Find a chessboard in every left/right pair (pairs where it is not found in both images are refused "
            "and listed), calibrate both cameras and their extrinsics (cv2.stereoCalibrate), derive the "
            "rectification, and write OUT/left.yaml and OUT/right.yaml in ROS camera_info YAML "
            "(P_right[0,3] = -fx * baseline). Images are paired in sorted order."
        ),
    )
    parser.add_argument("--left", nargs="+", required=True, metavar="GLOB_OR_FILE", help="left images (files or globs)")
    parser.add_argument("--right", nargs="+", required=True, metavar="GLOB_OR_FILE", help="right images (files or globs)")
    parser.add_argument("--pattern", default="9x6", help="inner corners per row x per column (default 9x6)")
    parser.add_argument("--square", type=float, required=True, metavar="SIZE_M", help="side of one square in metres")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for left.yaml and right.yaml")
    parser.add_argument("--model", default="plumb_bob", choices=("plumb_bob", "rational_polynomial"),
                        help="distortion model (default plumb_bob)")
    parser.add_argument("--min-pairs", type=int, default=6, help="fail with fewer usable pairs (default 6)")
    parser.add_argument("--alpha", type=float, default=0.0,
                        help="rectification scaling: 0 = only valid pixels (default), 1 = keep all source pixels")
    parser.add_argument("--max-rms", type=float, default=1.0,
                        help="fail (exit 1, files still written) when the stereo RMS exceeds this many px (default 1.0)")
    parser.add_argument("--comment", help="extra line written at the top of both YAMLs (e.g. where the images came from)")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of results")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from perception.camera.calibrate import calibrate_stereo, expand_images, parse_pattern

    pattern = parse_pattern(args.pattern)
    left = expand_images(args.left, "left")
    right = expand_images(args.right, "right")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    log(f"{len(left)} left and {len(right)} right images, board {pattern[0]}x{pattern[1]}, square {args.square} m")
    result = calibrate_stereo(left, right, pattern, args.square, model=args.model, min_pairs=args.min_pairs,
                              alpha=args.alpha, log=log)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    comment = (f"perception calibrate stereo: {len(result.used)} pairs, board {pattern[0]}x{pattern[1]}, "
               f"square {args.square} m, stereo RMS {result.rms:.3f} px, baseline {result.baseline:.4f} m")
    if args.comment:
        comment += "\n" + args.comment
    result.left.to_yaml(out / "left.yaml", comment=comment)
    result.right.to_yaml(out / "right.yaml", comment=comment)
    for l, r, why in result.rejected:
        log(f"refused: {l} / {r}: {why}")
    log(f"stereo RMS {result.rms:.3f} px (left {result.rms_left:.3f}, right {result.rms_right:.3f}), "
        f"baseline {result.baseline:.4f} m, fx {result.left.fx:.2f} px; wrote {out / 'left.yaml'}, {out / 'right.yaml'}")
    ok = result.rms <= args.max_rms
    if not ok:
        log(f"stereo RMS {result.rms:.3f} px exceeds --max-rms {args.max_rms}: check the board size and the images")
    summary = result.summary()
    summary.update({"left_yaml": str(out / "left.yaml"), "right_yaml": str(out / "right.yaml"), "ok": ok})
    if args.json:
        print_json(summary)
    else:
        print(f"RMS {result.rms:.3f} px, baseline {result.baseline:.4f} m, {len(result.used)} pairs used, "
              f"{len(result.rejected)} refused")
    return 0 if ok else 1
