"""`perception train classifier`: fit the online classifier's offline default weights from logged drives."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perception.cli.common import print_json


def register(verbs) -> None:
    parser = verbs.add_parser(
        "classifier",
        help="fit the terrain classifier's offline default weights on stereo-labelled windows of logged drives",
        description=(
            "Runs stereo labels and the band features over synthetic drives (seeds other than the evaluation's) "
            "and fits the 5-class softmax regression offline, class-balanced, on the stereo-labelled windows: "
            "the default weights the online classifier starts from and decays toward. The file records the "
            "feature net it was fitted on; refit after retraining the net (perception train features). "
            "Needs no torch."
        ),
    )
    parser.add_argument("--out", default=None, help="output .npz (default: engines/terrain_classifier_defaults.npz "
                        "next to the shipped feature net)")
    parser.add_argument("--model", help="feature net ONNX (default: the shipped engines/terrain_features.onnx)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103],
                        help="world seeds of the logged drives (keep them apart from eval terrain's 0 1 2)")
    parser.add_argument("--frames", type=int, default=60, help="frames per drive")
    parser.add_argument("--every", type=int, default=2, help="use every n-th frame")
    parser.add_argument("--epochs", type=int, default=30, help="passes over the samples")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from perception.engines.catalog import shipped_models_dir
    from perception.terrain.classifier import CLASS_NAMES
    from perception.terrain.defaults import (
        ClassifierDefaults, collect_sim_samples, fit_defaults, model_digest, save_defaults,
    )
    from perception.terrain.long_range import SHIPPED_DEFAULTS, LongRange, LongRangeConfig

    model = Path(args.model) if args.model else shipped_models_dir() / "terrain_features.onnx"
    out = Path(args.out) if args.out else shipped_models_dir() / SHIPPED_DEFAULTS
    long_range = LongRange(LongRangeConfig(learn=False), model=model)
    with tqdm(total=len(args.seeds) * len(range(0, args.frames, args.every)), unit="frame", file=sys.stderr,
              desc="collect") as bar:
        x, t, w = collect_sim_samples(args.seeds, args.frames, long_range, every=args.every,
                                      progress=lambda s, i: bar.update(1))
    counts = np.bincount(np.argmax(t, 1), minlength=len(CLASS_NAMES)) if len(t) else np.zeros(5, int)
    with tqdm(total=args.epochs, unit="epoch", file=sys.stderr, desc="fit") as bar:
        weights, bias, losses = fit_defaults(x, t, w, epochs=args.epochs,
                                             progress=lambda e, loss: (bar.update(1), bar.set_postfix(loss=loss)))
    trained_on = (f"{len(x)} stereo-labelled band windows of synthetic drives seeds {args.seeds}, "
                  f"{args.frames} frames each, every {args.every}; class counts "
                  f"{dict(zip(CLASS_NAMES, counts.tolist()))}; {args.epochs} epochs, final KL {losses[-1]:.4f}")
    save_defaults(out, ClassifierDefaults(weights, bias, model_digest(model), trained_on))
    print(f"wrote {out}", file=sys.stderr)
    result = {"out": str(out), "samples": int(len(x)), "class_counts": dict(zip(CLASS_NAMES, counts.tolist())),
              "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4), "epochs": args.epochs}
    if args.json:
        print_json(result)
    else:
        print(trained_on)
    long_range.close()
    return 0
