"""`perception calibrate int8`: float ONNX + calibration images -> Q/DQ INT8 ONNX (explicit quantization)."""
from __future__ import annotations

import argparse
import sys

DESCRIPTION = (
    "Quantize a float ONNX model to INT8 with explicit Q/DQ nodes (what TensorRT 10+ builds INT8 engines from), "
    "calibrated on real images preprocessed as the model's metadata says. Activations and weights are symmetric "
    "INT8 (zero point 0). The image list is a text file: one path per line, '#' comments, paths relative to the "
    "list, ${PERCEPTION_DATA} expanded; missing images are skipped and counted."
)


def register(verbs) -> None:
    parser = verbs.add_parser(
        "int8", help="float ONNX + calibration images -> Q/DQ INT8 ONNX", description=DESCRIPTION
    )
    parser.add_argument("model", metavar="MODEL", help="float ONNX model with perception metadata (or a YAML beside it)")
    parser.add_argument("--images", required=True, metavar="LIST", help="calibration image list (e.g. calibration/int8/terrain_features.txt)")
    parser.add_argument("--out", required=True, metavar="OUT.onnx", help="where to write the Q/DQ INT8 model")
    parser.add_argument(
        "--per-channel", action=argparse.BooleanOptionalAction, default=True,
        help="weights quantized per output channel (default; --no-per-channel for one scale per tensor)",
    )
    parser.add_argument("--max-images", type=int, default=None, metavar="N", help="use at most N usable images")
    parser.add_argument(
        "--method", choices=("minmax", "entropy", "percentile"), default="percentile",
        help="activation range calibration (default minmax)",
    )
    parser.add_argument("--percentile", type=float, default=99.999, help="with --method percentile (default 99.999)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from perception.engines.quantize import qdq_summary, quantize_int8, read_image_list

    if args.max_images is not None and args.max_images < 1:
        from perception.errors import InputError

        raise InputError("--max-images must be at least 1", subject=str(args.max_images))
    from pathlib import Path

    if Path(args.out).resolve() == Path(args.model).resolve():
        from perception.errors import InputError

        raise InputError("--out is the float model itself", subject=args.out, hint="write the INT8 model to a new file")
    paths = read_image_list(args.images)
    report = quantize_int8(
        args.model,
        args.out,
        paths,
        per_channel=args.per_channel,
        method=args.method,
        max_images=args.max_images,
        percentile=args.percentile,
        progress=True,
        list_name=args.images,
    )
    qdq = qdq_summary(report.path)
    print(
        f"calibrated on {report.images_used} image(s) ({report.samples} samples, {report.images_skipped} skipped), "
        f"{args.method}, weights {'per-channel' if report.per_channel else 'per-tensor'}; "
        f"{qdq['quantize_linear']} Q / {qdq['dequantize_linear']} DQ nodes, zero points all 0; "
        f"{report.seconds:.1f} s",
        file=sys.stderr,
    )
    print(report.path)
    return 0
