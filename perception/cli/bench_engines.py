"""`perception bench engines`: benchmark fp32 vs int8 inference of a project model."""
from __future__ import annotations

import argparse
import sys

DESCRIPTION = (
    "Run a project model (default: the shipped engines/terrain_features.onnx) in ONNX Runtime fp32, quantize it to "
    "Q/DQ INT8 on the fly (calibration list when $PERCEPTION_DATA is set, else synthetic frames), time both "
    "(median and p90 after warm-up) and measure the INT8 error on held-out inputs."
)


def register(verbs) -> None:
    parser = verbs.add_parser("engines", help="benchmark fp32 vs int8 inference of a project model", description=DESCRIPTION)
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.add_argument("--model", default=None, metavar="PATH", help="float ONNX model (default: engines/terrain_features.onnx)")
    parser.add_argument("--repeats", type=int, default=50, metavar="N", help="timed runs per precision (default 50)")
    parser.add_argument("--warmup", type=int, default=5, metavar="N", help="untimed runs first (default 5)")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="ONNX Runtime intra-op threads (default: all cores)")
    parser.add_argument("--max-images", type=int, default=32, metavar="N", help="calibration images (default 32)")
    parser.add_argument("--method", choices=("minmax", "entropy", "percentile"), default="percentile", help="calibration method")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from perception.cli.common import print_json
    from perception.engines.bench import bench_engines
    from perception.errors import InputError

    for name in ("repeats", "max_images"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1", subject=str(getattr(args, name)))
    result = bench_engines(
        args.model, repeats=args.repeats, warmup=max(0, args.warmup), threads=args.threads,
        max_images=args.max_images, method=args.method,
    )
    if args.json:
        print_json(result)
    else:
        for key in ("model", "input_shape", "backend", "threads", "fp32_ms", "fp32_p90_ms", "int8_ms", "int8_p90_ms",
                    "int8_speedup", "int8_max_abs_diff", "int8_rel_err", "int8_cosine", "calibration"):
            print(f"{key:>18}: {result[key]}")
        sys.stdout.flush()
    return 0
