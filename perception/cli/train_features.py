"""`perception train features`: train the terrain feature extractor without labels, export it to ONNX."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
data: strips 3@36xW cut from frames resampled at random scales (default 0.15..1, as the distance-normalised bands
are), then YUV + LCN; frames from the synthetic world (--seeds x --sim-frames) and any --images sources (image
folders, ROS 2 bags, videos: up to --image-frames frames each, the left image of stereo sources).
training: layer 1 (conv 20@7x6 tanh) then layer 2 (conv 100@6x5 tanh on the 1x4-pooled layer 1), each as a
convolutional encoder/decoder minimising reconstruction error plus an L1 code penalty (docs/terrain_features.md).
after training: a linear probe on held-out synthetic seeds (trained vs untrained features), the ONNX model with its
metadata (what it was trained on, the numbers), OUT_learning_curve.png next to it.

examples:
  perception train features --out engines/terrain_features.onnx \\
      --images $PERCEPTION_DATA/camvid/train $PERCEPTION_DATA/euroc_micro/mav0/cam0/data
  perception train features --out /tmp/f.onnx --sim-frames 2 --seeds 0 --epochs 1 --steps 5 --probe-frames 0 --json
"""


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not WIDTHxHEIGHT, e.g. 640x480") from None
    return w, h


def register(verbs) -> None:
    parser = verbs.add_parser(
        "features", help="train the terrain feature extractor without labels, export ONNX",
        description="Train the LAGR terrain feature extractor (conv 20@7x6, maxpool 1x4, conv 100@6x5) offline "
                    "without labels, layer by layer as convolutional encoder/decoder pairs, on band-shaped strips "
                    "of synthetic and real frames; write the ONNX model with its metadata. Progress on stderr. "
                    "Needs the `train` extra (torch).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("engines/terrain_features.onnx"), metavar="FILE",
                        help="the ONNX model to write (default engines/terrain_features.onnx)")
    parser.add_argument("--sim-frames", type=int, default=40, metavar="N",
                        help="synthetic frames per seed, spread over the drive (default 40; 0: none)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5],
                        help="synthetic world seeds to train on (default 0..5)")
    parser.add_argument("--sim-size", type=_size, default=(640, 480), metavar="WxH",
                        help="synthetic frame size (default 640x480)")
    parser.add_argument("--images", nargs="+", default=[], metavar="DIR|BAG",
                        help="real frames: image folders, ROS 2 bags or videos (left images)")
    parser.add_argument("--image-frames", type=int, default=60, metavar="N",
                        help="most frames taken from each --images source, a random subset (default 60)")
    parser.add_argument("--strips-per-frame", type=int, default=32, help="strips cut from each frame (default 32)")
    parser.add_argument("--strip-width", type=int, default=64, help="strip width in pixels (default 64)")
    parser.add_argument("--scale-range", type=float, nargs=2, default=(0.15, 1.0), metavar=("LO", "HI"),
                        help="random resampling scale of the frames, log-uniform (default 0.15 1.0)")
    parser.add_argument("--epochs", type=int, default=6, help="passes over the strips, per layer (default 6)")
    parser.add_argument("--steps", type=int, default=0,
                        help="most optimiser steps per layer per epoch (default 0: the whole strip set)")
    parser.add_argument("--batch", type=int, default=32, help="strips per step (default 32)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    parser.add_argument("--l1", type=float, default=0.05, help="L1 code penalty weight (default 0.05)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; 0: torch decides)")
    parser.add_argument("--seed", type=int, default=0, help="strip sampling, initialisation, batch order")
    parser.add_argument("--probe-frames", type=int, default=6,
                        help="linear probe: synthetic frames per probe seed (default 6; 0: no probe)")
    parser.add_argument("--probe-seeds", type=int, nargs="+", default=[100, 101, 102, 103], metavar="S",
                        help="held-out probe seeds, an even count: the first half to fit on, the second half to "
                             "score on (default 100 101 102 103)")
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/train_features/checkpoint.pt"),
                        help="training checkpoint, written every epoch (default runs/train_features/checkpoint.pt)")
    parser.add_argument("--resume", action="store_true", help="carry on from --checkpoint (same options)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of numbers")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from perception.cli.common import print_json
    from perception.errors import InputError
    from perception.terrain.feature_run import RunOptions, run as run_training
    from perception.terrain.feature_training import TrainConfig

    for name in ("sim_frames", "image_frames", "probe_frames"):
        if getattr(args, name) < 0:
            raise InputError(f"{getattr(args, name)} is negative", subject="--" + name.replace("_", "-"))
    if len(args.probe_seeds) % 2 or len(set(args.probe_seeds)) != len(args.probe_seeds):
        raise InputError(f"{args.probe_seeds} is not an even count of distinct seeds", subject="--probe-seeds",
                         hint="the first half fits the probe, the second half scores it")
    if args.strips_per_frame < 1:
        raise InputError(f"{args.strips_per_frame} is not positive", subject="--strips-per-frame")
    config = TrainConfig(epochs=args.epochs, steps=args.steps, batch=args.batch, lr=args.lr, l1=args.l1,
                         device=args.device, threads=args.threads, seed=args.seed)
    options = RunOptions(
        out=args.out, seeds=args.seeds if args.sim_frames else [], sim_frames=args.sim_frames,
        sim_size=args.sim_size, images=args.images, image_frames=args.image_frames,
        strips_per_frame=args.strips_per_frame, strip_width=args.strip_width, scale_range=tuple(args.scale_range),
        probe_frames=args.probe_frames, probe_train_seeds=args.probe_seeds[:len(args.probe_seeds) // 2],
        probe_test_seeds=args.probe_seeds[len(args.probe_seeds) // 2:],
        checkpoint=args.checkpoint, resume=args.resume, progress=not args.no_progress)
    result = run_training(options, config, log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        print_json(result)
    else:
        print(f"wrote {args.out}: {result['strips']} strips from {result['frames']} frames, "
              f"{result['train_s']:.0f} s training")
        for layer in ("layer1", "layer2"):
            print(f"{layer}: relative reconstruction error {result[f'{layer}_recon_rel_initial']:.3f} -> "
                  f"{result[f'{layer}_recon_rel']:.3f}, mean |code| {result[f'{layer}_code_mean_abs']:.3f}")
        for task, r in result.get("probe", {}).items():
            print(f"probe {task}: balanced accuracy trained {r['trained']['balanced_accuracy']:.3f}, "
                  f"untrained {r['untrained']['balanced_accuracy']:.3f}")
    return 0
