"""`perception train detect`: train the single-stage detector on synthetic drives (+ CamVid boxes), export ONNX."""
from __future__ import annotations

import argparse
import os
import sys

EPILOG = """\
data:
  synthetic drives of perception.sim (rendered once into OUT/cache): pedestrian, cyclist, car and truck boxes
  from the renderer's truth; and with --camvid DIR (default $PERCEPTION_DATA when it holds camvid/) the CamVid
  train + val images with Pedestrian, Bicyclist and Car boxes made from their label components (rough).

examples:
  perception train detect --out runs/detect --schedule-minutes 25 --onnx engines/detect_sim_camvid.onnx
  perception train detect --no-camvid --steps 500 --out runs/detect_sim          # synthetic only
  perception train detect --device cuda --batch 32 --steps 20000 --sim-seeds 64 --out runs/detect_big
"""


def register(verbs) -> None:
    parser = verbs.add_parser(
        "detect", help="train the detector (synthetic drives + CamVid boxes), export ONNX with metadata",
        description="Train the fully convolutional single-stage (centre-point, anchor-free) detector for "
                    "pedestrian, cyclist, car and truck. Progress on stderr; checkpoint.pt, history.json, "
                    "learning_curve.png in --out; the ONNX model with metadata (classes, normalisation, what it "
                    "was trained on) at the end. Needs the `train` extra (torch).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/detect", metavar="DIR", help="output folder (default runs/detect)")
    parser.add_argument("--onnx", metavar="FILE", help="where to write the ONNX model (default OUT/model.onnx)")
    parser.add_argument("--camvid", default=os.environ.get("PERCEPTION_DATA"), metavar="DIR",
                        help="folder holding camvid/ (or the camvid folder); default $PERCEPTION_DATA")
    parser.add_argument("--no-camvid", action="store_true", help="synthetic drives only")
    parser.add_argument("--sim-seeds", type=int, default=16, help="number of synthetic drives (default 16)")
    parser.add_argument("--sim-frames", type=int, default=60, help="frames per drive (default 60)")
    parser.add_argument("--cache", metavar="DIR", help="rendered-frame cache (default OUT/cache)")
    parser.add_argument("--steps", type=int, default=3000, help="planned optimiser steps (default 3000)")
    parser.add_argument("--schedule-minutes", type=float, default=0.0, metavar="MIN",
                        help="fit the schedule to MIN minutes and finish then; --steps becomes an upper bound")
    parser.add_argument("--batch", type=int, default=8, help="crops per step (default 8)")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 2e-3)")
    parser.add_argument("--resume", action="store_true", help="carry on from OUT/checkpoint.pt")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; 0: torch decides)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trained-on", default="", help="metadata text (default: written from the run)")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of results")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from perception.cli.common import print_json
    from perception.detect.train import DetectTrainConfig, train

    camvid = None
    if args.camvid and not args.no_camvid:
        root = Path(args.camvid)
        camvid = root if (root / "camvid").is_dir() or (root / "train").is_dir() else None
        if camvid is None:
            print(f"note: no CamVid under {root}; training on synthetic drives only", file=sys.stderr)
    cfg = DetectTrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, sim_seeds=tuple(range(11, 11 + args.sim_seeds)),
                            sim_frames=args.sim_frames, schedule_s=args.schedule_minutes * 60.0,
                            device=args.device, threads=args.threads, seed=args.seed)
    result = train(cfg, args.out, camvid=camvid, resume=args.resume, onnx_path=args.onnx,
                   trained_on=args.trained_on, cache_dir=args.cache,
                   log=lambda m: print(m, file=sys.stderr, flush=True))
    summary = {k: v for k, v in result.items() if k != "history"}
    if args.json:
        print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0
