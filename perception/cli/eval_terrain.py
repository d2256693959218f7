"""`perception eval terrain`: near-to-far terrain classification on synthetic drives vs ground truth
(perception.terrain.evaluate), with the stereo-only baseline run on the same frames."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perception.cli.common import print_json


def register(verbs) -> None:
    parser = verbs.add_parser(
        "terrain",
        help="evaluate near-to-far terrain classification on synthetic drives (vs a stereo-only map)",
        description=(
            "Drives through synthetic worlds whose terrain changes appearance mid-drive; per frame stereo labels "
            "the near range, the online classifier learns from them and classifies the band pyramid out to the "
            "horizon. Scores traversable-vs-not against the ground truth near and far (to 100 m), the error "
            "against the stereo labels with and without online learning, frames to adapt after the change, the "
            "map's cell accuracy, and the time per frame; the same for a stereo-only map in the same run "
            "(\"baseline\"). Definitions: perception/terrain/evaluate.py and docs/terrain.md."
        ),
    )
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="world seeds, one drive each")
    parser.add_argument("--frames", type=int, default=60, help="frames per drive (the terrain changes at half)")
    parser.add_argument("--size", default="640x480", help="image size WxH (default 640x480)")
    parser.add_argument("--model", help="feature net ONNX (default: the shipped engines/terrain_features.onnx)")
    parser.add_argument("--defaults", help="classifier default weights .npz (default: the shipped ones, when they "
                        "belong to the feature net)")
    parser.add_argument("--params", help="parameter YAML (/**: ros__parameters:) for the stages (labels, bands, "
                        "terrain, classifier, map), as the nodes and replay read it")
    parser.add_argument("--backend", default="auto", choices=("auto", "onnxruntime", "tensorrt"))
    parser.add_argument("--real", metavar="BAG", nargs="?", const="auto",
                        help="also run the whole pipeline on a real stereo bag (default with no value: "
                             "$PERCEPTION_DATA/euroc_stereo_bag) and report it under \"real\"")
    parser.add_argument("--save-images", metavar="DIR",
                        help="write the learning curves, the maps and an overlay of the last frame here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from perception.engines.catalog import shipped_models_dir
    from perception.engines.factory import open_engine
    from perception.errors import InputError
    from perception.sim.config import parse_size
    from perception.terrain.evaluate import TerrainEvalConfig, evaluate_drive, summarize

    if args.frames < 12:
        raise InputError(f"{args.frames} frames", subject="--frames", hint="at least 12: 10 before the change")
    size = parse_size(args.size)
    cfg = TerrainEvalConfig(seeds=tuple(args.seeds), frames=args.frames, size=size)
    if args.params:
        from perception.pipeline.params_file import load_pipeline_config

        cfg.pipeline = load_pipeline_config(args.params)[0]
    model = Path(args.model) if args.model else shipped_models_dir() / "terrain_features.onnx"
    engine = open_engine(model, backend=args.backend, task="terrain_features")
    drives, scores = [], []
    from tqdm import tqdm

    with tqdm(total=len(cfg.seeds) * cfg.frames, unit="frame", file=sys.stderr, desc="eval terrain") as bar:
        for seed in cfg.seeds:
            dr, sc = evaluate_drive(seed, cfg, engine, progress=lambda s, i: bar.update(1),
                                    keep_maps=bool(args.save_images) and seed == cfg.seeds[0],
                                    defaults=args.defaults)
            drives.append(dr)
            scores.append(sc)
    result = summarize(drives, scores, cfg, cfg.pipeline.labels.max_range_m)
    if args.real:
        import os

        from perception.terrain.real_run import run_real

        bag = args.real
        if bag == "auto":
            data = os.environ.get("PERCEPTION_DATA")
            if not data:
                raise InputError("no bag given and PERCEPTION_DATA is not set", subject="--real",
                                 hint="give the bag: --real PATH")
            bag = str(Path(data) / "euroc_stereo_bag")
        with tqdm(unit="frame", file=sys.stderr, desc="real bag") as bar:
            result["real"] = run_real(bag, config=cfg.pipeline, save_images=Path(args.save_images) if args.save_images else None,
                                      progress=lambda n: bar.update(1))
    result["model"] = model.name
    result["backend"] = engine.backend
    if args.save_images:
        from perception.terrain.eval_plots import save_eval_images

        for path in save_eval_images(Path(args.save_images), drives, cfg):
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print_json(result)
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    engine.close()
    return 0
