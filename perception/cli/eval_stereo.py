"""`perception eval stereo`: disparity accuracy on Middlebury Motorcycle and Aloe, ours vs plain OpenCV SGBM.

`--synthetic`: ground plane and near-range labels against the synthetic world's ground truth
(perception.stereo.synthetic_eval; issue 4, second part).
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
    parser.add_argument("--synthetic", action="store_true",
                        help="instead: ground plane and near-range labels against the synthetic world's ground truth "
                             "(perception.stereo.synthetic_eval), plus ground and labels on the real KITTI pair and "
                             "EuRoC bag of --data (perception.stereo.real_check); --save-images writes the confusion "
                             "matrix and overlay pictures")
    parser.add_argument("--frames", type=int, default=6,
                        help="--synthetic: frames per seed, spread over the drive (default 6)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3],
                        help="--synthetic: world seeds (default 0 1 2 3)")
    parser.add_argument("--consecutive", action="store_true",
                        help="--synthetic: the first --frames frames in order, with the temporal ground filter on")
    parser.set_defaults(func=run)


def run_synthetic(args: argparse.Namespace) -> int:
    from perception.errors import InputError
    from perception.stereo import synthetic_eval

    if args.frames < 1:
        raise InputError(f"{args.frames} is not positive", subject="--frames")
    result = synthetic_eval.run_synthetic_eval(args.seeds, args.frames, consecutive=args.consecutive,
                                               keep_example=bool(args.save_images))
    example = result.pop("_example", None)
    from perception.stereo import real_check

    result["real"] = real_check.run_real_check(args.data, args.save_images,
                                               log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.save_images and not result.get("skipped"):
        from pathlib import Path

        path = synthetic_eval.save_confusion_png(result["labels"]["confusion"],
                                                 Path(args.save_images) / "labels_confusion.png")
        print(f"wrote {path}", file=sys.stderr)
        path = synthetic_eval.save_example_png(example, Path(args.save_images) / "labels_synthetic.png")
        if path:
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print_json(result)
    elif result.get("skipped"):
        print(f"synthetic eval skipped: {result['skipped']}")
        for note in result["real"].get("notes", []):
            print(f"note: {note}")
    else:
        g, lab = result["ground"], result["labels"]
        print(f"{result['frames']} frames ({result['size']}, seeds {result['seeds']}), status {result['status']}")
        for key in ("normal_err_deg", "height_err_m", "pitch_err_deg", "roll_err_deg", "horizon_err_px"):
            print(f"ground {key:<16} median {g[key]['median']}  p90 {g[key]['p90']}")
        for key in ("pitch_err_deg", "roll_err_deg", "height_err_m"):
            print(f"vs camera pose {key:<16} median {g['vs_pose'][key]['median']}  p90 {g['vs_pose'][key]['p90']}")
        print(f"labels accuracy {lab['accuracy']}  3-class {lab['accuracy_3class']}  coverage {lab['coverage']}  "
              f"({lab['windows_compared']} windows)")
        print(f"ms per frame: {result['ms']}")
    kitti = result["real"].get("kitti")
    if kitti and not args.json:
        print(f"KITTI street pair: camera height {kitti['height_m']} m (expected {kitti['height_expected_m']}), "
              f"pitch {kitti['pitch_deg']} deg, roll {kitti['roll_deg']} deg, road windows ground "
              f"{kitti['road_ground_share']}")
    return 0


def run(args: argparse.Namespace) -> int:
    if getattr(args, "synthetic", False):
        return run_synthetic(args)
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
