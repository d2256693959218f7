"""`perception bench soak`: memory and latency over many frames through the replay path (perception.bench.soak)."""
from __future__ import annotations

import argparse
import sys

DESCRIPTION = (
    "Push N frames (a few synthetic frames rendered once, cycled with increasing stamps) through the offline replay "
    "path (one pipeline, every result written to a bag in a temporary folder), sample RSS every K frames and time every "
    "frame; report the RSS slope after the warm-up (MB per 1000 frames) and the latency of the first vs the last tenth, "
    "and write a PNG of the curves. A full soak: --frames 20000 at 320x240 (about an hour on 2 cores)."
)


def register(verbs) -> None:
    parser = verbs.add_parser("soak", help="memory and latency over many frames through the replay path",
                              description=DESCRIPTION)
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.add_argument("--frames", type=int, default=20000, metavar="N", help="frames to push (default 20000)")
    parser.add_argument("--every", type=int, default=100, metavar="K", help="sample RSS every K frames (default 100)")
    parser.add_argument("--warmup", type=int, default=None, metavar="N",
                        help="frames left out of the RSS slope (default: a tenth, at least 2 samples)")
    parser.add_argument("--size", default="320x240", metavar="WxH", help="frame size (default 320x240)")
    parser.add_argument("--distinct", type=int, default=8, metavar="N", help="distinct frames rendered (default 8)")
    parser.add_argument("--plot", default="perception-soak.png", metavar="PNG",
                        help="where to write the curves (default perception-soak.png; 'none': no plot)")
    parser.add_argument("--no-copy-inputs", action="store_true", help="do not copy the input images into the bag")
    parser.add_argument("--no-overlay", action="store_true", help="do not compose and write the overlay image")
    parser.add_argument("--tmp", default=None, metavar="DIR", help="folder for the temporary bag (default: the system's)")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="OpenCV and ONNX Runtime threads")
    parser.add_argument("--seed", type=int, default=0, help="synthetic world seed (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from perception.bench.soak import soak
    from perception.cli.common import print_json
    from perception.errors import InputError

    if args.threads is not None and args.threads < 1:
        raise InputError("must be at least 1", subject="--threads")
    if args.distinct < 1:
        raise InputError("must be at least 1", subject="--distinct")
    result = soak(frames=args.frames, every=args.every, size=args.size, distinct=args.distinct, warmup=args.warmup,
                  plot_path=None if args.plot.lower() == "none" else args.plot, copy_inputs=not args.no_copy_inputs,
                  overlay=not args.no_overlay, tmp=args.tmp, threads=args.threads, seed=args.seed)
    if args.json:
        print_json(result)
        return 0
    for key in ("frames_done", "frames_failed", "rss_first_mb", "rss_last_mb", "rss_slope_mb_per_1000",
                "latency_p50_first_ms", "latency_p50_last_ms", "latency_p99_first_ms", "latency_p99_last_ms",
                "bag_bytes_per_frame", "wall_s", "peak_rss_mb", "plot"):
        print(f"{key:>24}: {result.get(key)}")
    sys.stdout.flush()
    return 0
