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
    parser.add_argument("--hindsight", action=argparse.BooleanOptionalAction, default=True,
                        help="also label far windows whose place the drive passed later with the stereo label it got "
                             "there (default on; logs only)")
    parser.add_argument("--finetune-features", metavar="OUT_ONNX",
                        help="also fine-tune the feature net on the stereo targets (needs torch) and write it here; "
                             "the defaults are then the fine-tuned net's classifier head")
    parser.add_argument("--device", default="cpu", help="torch device for --finetune-features (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch decides)")
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from perception.engines.catalog import shipped_models_dir
    from perception.terrain.classifier import CLASS_NAMES
    from perception.terrain.defaults import ClassifierDefaults, fit_defaults, model_digest, save_defaults
    from perception.terrain.stereo_logs import collect_stereo_strips
    from perception.terrain.long_range import SHIPPED_DEFAULTS, LongRange, LongRangeConfig

    model = Path(args.model) if args.model else shipped_models_dir() / "terrain_features.onnx"
    out = Path(args.out) if args.out else shipped_models_dir() / SHIPPED_DEFAULTS
    long_range = LongRange(LongRangeConfig(learn=False), model=model)
    frames_used = len(args.seeds) * len(range(0, args.frames, args.every))
    with tqdm(total=len(args.seeds) * args.frames, unit="frame", file=sys.stderr, desc="stereo logs") as bar:
        data = collect_stereo_strips(args.seeds, args.frames, long_range, every=args.every,
                                     hindsight=args.hindsight, progress=lambda s, i: bar.update(1))
    long_range.close()
    t, w = data.window_samples()
    counts = np.bincount(np.argmax(t, 1), minlength=len(CLASS_NAMES)) if len(t) else np.zeros(5, int)
    source = (f"{len(t)} stereo-labelled band windows ({'near + hindsight' if args.hindsight else 'near'}) of "
              f"{data.frames} frames of synthetic drives seeds {args.seeds} ({args.frames} frames each, every "
              f"{args.every}); class counts {dict(zip(CLASS_NAMES, counts.tolist()))}")
    if args.finetune_features:
        from perception.terrain.feature_finetune import finetune, weights_of
        from perception.terrain.feature_net import write_feature_net

        with tqdm(total=args.epochs, unit="epoch", file=sys.stderr, desc="fine-tune") as bar:
            conv, weights, bias, losses = finetune(
                data, weights_of(model), epochs=args.epochs, device=args.device, threads=args.threads or None,
                progress=lambda e, loss: (bar.update(1), bar.set_postfix(loss=loss)))
        trained_on = (f"{read_trained_on(model)}; then fine-tuned {args.epochs} epochs on {source} "
                      f"(KL to the stereo targets {losses[0]:.4f} -> {losses[-1]:.4f})")
        model = write_feature_net(args.finetune_features, conv, trained_on=trained_on,
                                  training={"finetune_epochs": args.epochs, "finetune_kl": losses})
        print(f"wrote {model}", file=sys.stderr)
    else:
        x, t, w = data.window_samples(_features(model, data.strips))
        with tqdm(total=args.epochs, unit="epoch", file=sys.stderr, desc="fit") as bar:
            weights, bias, losses = fit_defaults(x, t, w, epochs=args.epochs,
                                                 progress=lambda e, loss: (bar.update(1), bar.set_postfix(loss=loss)))
        trained_on = f"{source}; {args.epochs} epochs, final KL {losses[-1]:.4f}"
    # both fits balance the classes; the logits get the log prior back so the probabilities are calibrated to the
    # class frequencies stereo sees (logit adjustment), else every far window leans to the rare obstacle classes
    prior = np.bincount(np.argmax(t, 1), weights=w, minlength=len(CLASS_NAMES)) + 1.0
    bias = (bias + np.log(prior / prior.sum())).astype(np.float32)
    trained_on += f"; biases prior-adjusted to the class shares {np.round(prior / prior.sum(), 4).tolist()}"
    save_defaults(out, ClassifierDefaults(weights, bias, model_digest(model), trained_on))
    print(f"wrote {out}", file=sys.stderr)
    result = {"out": str(out), "feature_net": str(model), "samples": int(len(t)), "frames": frames_used,
              "class_counts": dict(zip(CLASS_NAMES, counts.tolist())),
              "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4), "epochs": args.epochs}
    if args.json:
        print_json(result)
    else:
        print(trained_on)
    return 0


def read_trained_on(model) -> str:
    """What the starting net was trained on, for the fine-tuned net's `trained_on`."""
    from perception.engines.model_file import load_model
    from perception.terrain.feature_net import UNTRAINED

    text = load_model(model).metadata.trained_on
    if text == UNTRAINED:
        return "starting from the seeded random orthonormal initialisation (numpy PCG64 seed 0; no unsupervised " \
               "pre-training: it measured no better, docs/terrain_features.md)"
    return f"starting from a net trained on: {text}"


def _features(model, strips):
    """(N, 100, 25, 115) features of the strips with the net `model` (ONNX Runtime)."""
    import numpy as np

    from perception.engines.factory import open_engine

    with open_engine(model, backend="onnxruntime", task="terrain_features") as engine:
        name, out = engine.inputs[0].name, engine.outputs[0].name
        return np.concatenate([engine.infer({name: strips[i: i + 1].astype(np.float32)})[out]
                               for i in range(len(strips))])
