"""`perception eval scene`: scene parsing on the CamVid test split, ours vs the Farabet et al. reference variants."""
from __future__ import annotations

import argparse
import os
import sys


def register(verbs) -> None:
    parser = verbs.add_parser(
        "scene", help="evaluate scene parsing on CamVid test (ours vs the Farabet et al. reference)",
        description="Scene parsing on the 233 CamVid test images ($PERCEPTION_DATA/camvid; 11 classes, void "
                    "ignored): pixel_acc, class_acc, miou and ms (median per 480x360 frame, whole parse, ONNX "
                    "Runtime on this CPU) for the shipped model, and in the same run under \"baseline\" the "
                    "single-scale reference network, under \"multiscale\" the 3-scale reference (Farabet et al. "
                    "2013), under \"superpixels\" the multiscale one with the superpixel majority vote, and under "
                    "\"flip\" ours with left-right flip test-time augmentation. "
                    "Progress goes to stderr.")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.add_argument("--data", default=os.environ.get("PERCEPTION_DATA"),
                        help="real data folder holding camvid/ (or the camvid folder; default $PERCEPTION_DATA)")
    parser.add_argument("--model", help="the model to evaluate (default: the shipped engines/scene_camvid.onnx)")
    parser.add_argument("--baseline", help="single-scale reference model (default: shipped)")
    parser.add_argument("--multiscale", help="multiscale reference model, also used for superpixels (default: shipped)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N test images (0: all 233)")
    parser.add_argument("--threads", type=int, default=1,
                        help="ONNX Runtime intra-op threads per model (default 1: a steady number on a shared CPU)")
    parser.add_argument("--save-images", metavar="DIR",
                        help="write scene_overlays.png and scene_confusion.png (ours) here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from perception.cli.common import print_json
    from perception.errors import InputError
    from perception.scene.evaluate import default_variant_paths, run_eval

    if not args.data:
        raise InputError("no data folder", subject="--data",
                         hint="set PERCEPTION_DATA to the shared data folder (holding camvid/) or pass --data")
    if args.limit < 0 or args.threads < 1:
        raise InputError("--limit must be >= 0 and --threads >= 1", subject="perception eval scene")
    models = default_variant_paths()
    if args.model:
        models["ours"] = models["flip"] = Path(args.model)
    if args.baseline:
        models["baseline"] = Path(args.baseline)
    if args.multiscale:
        models["multiscale"] = models["superpixels"] = Path(args.multiscale)
    result = run_eval(args.data, models=models, limit=args.limit, threads=args.threads,
                      save_images=args.save_images, log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        print_json(result)
        return 0
    print(f"CamVid test, {result['frames']} images, ONNX Runtime {result['threads']} thread(s)")
    print(f"{'variant':<13}{'pixel_acc':>10}{'class_acc':>10}{'miou':>8}{'ms':>9}")
    rows = [("ours", result)] + [(k, result[k]) for k in ("flip", "baseline", "multiscale", "superpixels") if k in result]
    for name, m in rows:
        print(f"{name:<13}{m['pixel_acc']:>10.3f}{m['class_acc']:>10.3f}{m['miou']:>8.3f}{m['ms']:>9.1f}")
    for note in result.get("notes", []):
        print(f"note: {note}")
    return 0
