"""`perception train scene`: train a scene parser on a folder of images and label images, export it to ONNX."""
from __future__ import annotations

import argparse
import sys

EPILOG = """\
data folder layouts:
  DIR/train/ + DIR/trainannot/ (+ val/ valannot/, test/ testannot/)   SegNet / CamVid layout
  DIR/images/ + DIR/labels/ (optional DIR/train.txt, DIR/val.txt: file stems; else --val-fraction is held out)
labels: class-index PNGs, or colour-coded PNGs with a colour-map file (`name R G B` per line, in index order for
index labels); a class named `void` is ignored. The colour map is --colormap FILE, else DIR/colormap.txt,
DIR/classes.txt or DIR/labelmap.txt; --classes camvid for CamVid's 11 classes (index 11 void).

examples:
  perception train scene --data my_set --out runs/my_set --steps 3000
  perception train scene --data my_set --out runs/my_set --steps 3000 --resume        # carry on after a stop
  perception train scene --data $PERCEPTION_DATA/camvid --classes camvid --train-on-val --device cuda --amp \\
      --steps 40000 --batch 16 --out runs/camvid --onnx engines/scene_camvid.onnx
"""


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not WIDTHxHEIGHT, e.g. 480x360") from None
    return w, h


def register(verbs) -> None:
    parser = verbs.add_parser(
        "scene", help="train the scene parser on a folder of images + label images, export ONNX",
        description="Train a scene parser (per-pixel classes) on a folder of images and label images. Progress "
                    "bar on stderr, checkpoints and learning_curve.png in --out, the ONNX model with its metadata "
                    "(class names, colours, normalisation, what it was trained on) at the end. CPU here, CUDA "
                    "where torch sees a GPU. Needs the `train` extra (torch).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, metavar="DIR", help="the data folder (layouts below)")
    parser.add_argument("--out", default="runs/scene", metavar="DIR",
                        help="checkpoints, history.json, learning_curve.png, model.onnx (default runs/scene)")
    parser.add_argument("--onnx", metavar="FILE", help="where to write the ONNX model (default OUT/model.onnx)")
    parser.add_argument("--colormap", metavar="FILE", help="colour-map file: `name R G B` per line")
    parser.add_argument("--classes", choices=("camvid",), help="a built-in class list instead of a colour map")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="held out for validation when the folder gives no split (default 0.1)")
    parser.add_argument("--train-on-val", action="store_true", help="train on train + val (no validation)")
    parser.add_argument("--arch", default="lite", choices=("lite", "farabet"),
                        help="lite: efficient encoder-decoder (default); farabet: Farabet et al. multiscale ConvNet")
    parser.add_argument("--scales", type=int, default=3, choices=(1, 2, 3),
                        help="farabet: pyramid levels (1: the single-scale baseline)")
    parser.add_argument("--widths", default="", help="comma-separated layer widths (default: the architecture's)")
    parser.add_argument("--size", type=_size, default=(480, 360), metavar="WxH",
                        help="network input size; frames are resized to it (default 480x360)")
    parser.add_argument("--crop", type=_size, default=(240, 180), metavar="WxH",
                        help="training crop at network scale (default 240x180)")
    parser.add_argument("--batch", type=int, default=8, help="crops per step (default 8)")
    parser.add_argument("--steps", type=int, default=2000, help="planned optimiser steps (default 2000)")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3)")
    parser.add_argument("--warmup", type=int, default=50, help="linear learning-rate warm-up steps (default 50)")
    parser.add_argument("--scale-range", type=float, nargs=2, default=(0.75, 1.5), metavar=("LO", "HI"),
                        help="random scale augmentation (default 0.75 1.5)")
    parser.add_argument("--val-every", type=int, default=500, help="validate every N steps (default 500)")
    parser.add_argument("--checkpoint-every", type=int, default=200, help="checkpoint every N steps (default 200)")
    parser.add_argument("--time-budget", type=float, default=0.0, metavar="MIN",
                        help="stop after this many minutes with a checkpoint (resume later); 0: no limit")
    parser.add_argument("--schedule-minutes", type=float, default=0.0, metavar="MIN",
                        help="fit the learning-rate schedule to MIN minutes of training and finish (export) then; "
                             "--steps becomes an upper bound; 0: the schedule follows --steps")
    parser.add_argument("--resume", action="store_true", help="carry on from OUT/checkpoint.pt")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto: CUDA when torch sees a GPU (default)")
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes (default 0)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch decides)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="scene", help="model name in the metadata")
    parser.add_argument("--trained-on", default="", help="metadata text (default: written from the run)")
    parser.add_argument("--license", default="", help="metadata text: the terms of the training data")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of results")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from perception.cli.common import print_json
    from perception.scene.data import discover
    from perception.scene.train import TrainConfig, train

    data = discover(args.data, colormap=args.colormap, classes=args.classes, val_fraction=args.val_fraction,
                    seed=args.seed)
    cfg = TrainConfig(
        arch=args.arch, width=args.size[0], height=args.size[1], crop_width=args.crop[0], crop_height=args.crop[1],
        batch=args.batch, steps=args.steps, lr=args.lr, warmup=args.warmup,
        scale_min=args.scale_range[0], scale_max=args.scale_range[1], scales=args.scales, widths=args.widths,
        val_every=args.val_every, checkpoint_every=args.checkpoint_every, time_budget_s=args.time_budget * 60.0,
        schedule_s=args.schedule_minutes * 60.0, train_on_val=args.train_on_val, seed=args.seed,
        threads=args.threads, device=args.device, amp=args.amp, workers=args.workers, name=args.name,
        trained_on=args.trained_on, license=args.license)
    result = train(data, cfg, args.out, resume=args.resume, onnx_path=args.onnx,
                   log_fn=lambda m: print(m, file=sys.stderr, flush=True), progress=not args.no_progress)
    last = result.history[-1] if result.history else {}
    summary = {"steps": result.steps_done, "planned_steps": cfg.steps, "finished": result.finished,
               "minutes": round(result.seconds / 60, 2), "final_loss": last.get("loss"),
               "onnx": str(result.onnx_path) if result.onnx_path else None,
               "checkpoint": str(result.out_dir / "checkpoint.pt"),
               "learning_curve": str(result.out_dir / "learning_curve.png")}
    if result.final_val:
        summary.update(val_miou=result.final_val["miou"], val_pixel_acc=result.final_val["pixel_acc"],
                       val_class_acc=result.final_val["class_acc"])
    if args.json:
        print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0 if result.finished or result.steps_done else 1
