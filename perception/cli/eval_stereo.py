"""`perception eval stereo`: disparity accuracy on Middlebury Motorcycle and Aloe, ours vs plain OpenCV SGBM.

Ground-plane and near-range label evaluation join this verb with their modules (issue 4, second part).
"""
from __future__ import annotations

import argparse
import math
import os
import sys

from perception.cli.common import print_json


def register(verbs) -> None:
    parser = verbs.add_parser(
        "stereo",
        help="evaluate disparity against ground truth (ours vs OpenCV StereoSGBM)",
        description=(
            "Disparity accuracy on the Middlebury Motorcycle pair (scikit-image) and the Aloe pair "
            "($PERCEPTION_DATA/opencv_samples/aloe, skipped with a note when absent): bad2_pct (error > 2 px, "
            "invalid counted as bad), avg_err_px, density_pct, ms, for our matcher and OpenCV's plain "
            "StereoSGBM run in the same process. Progress goes to stderr."
        ),
    )
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.add_argument("--data", default=os.environ.get("PERCEPTION_DATA"),
                        help="real data folder (default: $PERCEPTION_DATA)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="evaluate a downscaled copy of each pair, GT scaled alike (default 1.0 = as shipped)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method, interleaved; median reported")
    parser.add_argument("--save-images", metavar="DIR",
                        help="write one small PNG per pair (left, ground truth, baseline, ours, confidence) here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from perception.errors import InputError
    from perception.stereo import eval as stereo_eval

    if not (0.05 <= args.scale <= 1.0):
        raise InputError(f"{args.scale} is outside 0.05 .. 1.0", subject="--scale")
    if args.repeats < 1:
        raise InputError(f"{args.repeats} is not positive", subject="--repeats")
    result = stereo_eval.run_eval(args.data, scale=args.scale, repeats=args.repeats,
                                  keep_outputs=bool(args.save_images))
    outputs = result.pop("_outputs", {})
    if args.save_images:
        for name, (pair, out) in outputs.items():
            path = stereo_eval.save_picture(pair, out["ours"], out["baseline"], args.save_images)
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print_json(result)
    else:
        print(f"{'pair':<12}{'method':<10}{'bad2 %':>9}{'avg err px':>12}{'density %':>11}{'ms':>9}")
        for name in ("motorcycle", "aloe"):
            if name not in result:
                continue
            rows = [("ours", result[name]), ("baseline", result["baseline"][name])]
            rows += [(k, v[name]) for k, v in result["variants"].items()]
            for method, m in rows:
                avg = m["avg_err_px"]
                print(f"{name:<12}{method:<10}{m['bad2_pct']:>9.2f}{avg if not math.isnan(avg) else float('nan'):>12.3f}"
                      f"{m['density_pct']:>11.1f}{m['ms']:>9.0f}")
        for note in result.get("notes", []):
            print(f"note: {note}")
    return 0
