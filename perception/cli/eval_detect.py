"""`perception eval detect`: detection AP and stereo range error, ours vs OpenCV's HOG people detector."""
from __future__ import annotations

import argparse
import os
import sys


def register(verbs) -> None:
    parser = verbs.add_parser(
        "detect", help="evaluate detection and stereo range (ours vs OpenCV's HOG people detector)",
        description="Detection on synthetic stereo drives with ground truth (640x480, seeds the shipped model never "
                    "saw) and on the CamVid test images ($PERCEPTION_DATA/camvid; boxes from label components): "
                    "ap50 per class, map50, ms per frame (median Detector.detect, ONNX Runtime), and on the "
                    "synthetic drives range_err_pct (median relative stereo range error, true positives within "
                    "30 m). Under \"camvid\" the CamVid keys; under \"baseline\" the same keys for OpenCV's HOG "
                    "people detector (pedestrians only) run in the same process on the same images. Progress "
                    "goes to stderr.")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.add_argument("--data", default=os.environ.get("PERCEPTION_DATA"),
                        help="folder holding camvid/ (default $PERCEPTION_DATA); without it only synthetic drives")
    parser.add_argument("--model", help="detector to evaluate (default: the shipped engines/detect_sim_camvid.onnx)")
    parser.add_argument("--frames", type=int, default=20, help="frames per synthetic drive (default 20)")
    parser.add_argument("--seeds", default="101,102", help="synthetic drives (seeds), comma-separated")
    parser.add_argument("--limit", type=int, default=0, help="only the first N CamVid test images (0: all 233)")
    parser.add_argument("--no-camvid", action="store_true", help="skip CamVid")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    parser.add_argument("--hog-upscale", type=float, default=1.0,
                        help="upscale frames for HOG (its window needs people >= ~100 px tall; default 1)")
    parser.add_argument("--score-threshold", type=float, default=0.05,
                        help="our detections kept for AP (default 0.05; AP integrates over the thresholds above)")
    parser.add_argument("--save-images", metavar="DIR", help="write detect_examples.jpg here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from perception.cli.common import print_json
    from perception.detect.evaluate import run_eval
    from perception.errors import InputError

    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        raise InputError(f"--seeds '{args.seeds}' is not a comma-separated list of integers",
                         subject="perception eval detect") from None
    if args.frames < 1 or args.limit < 0 or args.threads < 1 or not seeds or args.hog_upscale <= 0:
        raise InputError("--frames >= 1, --limit >= 0, --threads >= 1, --hog-upscale > 0 and one seed at least",
                         subject="perception eval detect")
    data = None if args.no_camvid else args.data
    if data is not None:
        from perception.detect.data import camvid_files

        if not camvid_files(data, "test"):
            print(f"note: no CamVid test images under {data}; synthetic drives only", file=sys.stderr)
            data = None
    result = run_eval(data, model=args.model, sim_frames=args.frames, seeds=seeds, camvid_limit=args.limit,
                      threads=args.threads, hog_upscale=args.hog_upscale,
                      score_threshold=args.score_threshold, save_images=args.save_images,
                      log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        print_json(result)
        return 0
    rows = [("ours (synthetic)", result), ("HOG (synthetic)", result["baseline"])]
    if "camvid" in result:
        rows += [("ours (CamVid)", result["camvid"]), ("HOG (CamVid)", result["baseline"]["camvid"])]
    print(f"{'':<18}{'ap50 pedestrian':>16}{'map50':>8}{'range err %':>12}{'ms':>8}")
    for name, m in rows:
        ped = m["ap50"].get("pedestrian", float("nan"))
        rng = m.get("range_err_pct")
        print(f"{name:<18}{ped:>16.3f}{m['map50']:>8.3f}{(f'{rng:.1f}' if rng is not None else '-'):>12}"
              f"{m['ms']:>8.1f}")
    for note in result.get("notes", []):
        print(f"note: {note}")
    return 0
