"""`perception bench [pipeline]`: benchmark the full pipeline (perception.bench.pipeline)."""
from __future__ import annotations

import argparse
import sys

DESCRIPTION = (
    "Time the full pipeline (every stage on) per frame and per stage on synthetic frames rendered before timing "
    "(320x240 and 640x480 by default) and on the real EuRoC stereo bag under $PERCEPTION_DATA (skipped with a note "
    "when absent), against the stereo front end alone as the baseline, and with INT8 (Q/DQ) copies of the networks "
    "made on the fly. Progress on stderr; with --json the last stdout line is one JSON object (docs/performance.md)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="the last stdout line is one JSON object of metrics")
    parser.add_argument("--frames", type=int, default=50, metavar="N", help="timed frames per size (default 50)")
    parser.add_argument("--warmup", type=int, default=5, metavar="N", help="untimed frames first (default 5)")
    parser.add_argument("--sizes", default="320x240,640x480", metavar="WxH[,WxH]",
                        help="synthetic frame sizes (default 320x240,640x480)")
    parser.add_argument("--distinct", type=int, default=8, metavar="N",
                        help="distinct synthetic frames rendered per size, then cycled (default 8)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="OpenCV and ONNX Runtime threads (default: the libraries decide)")
    parser.add_argument("--no-euroc", action="store_true", help="skip the real-frame (EuRoC bag) part")
    parser.add_argument("--no-int8", action="store_true", help="skip the INT8 part")
    parser.add_argument("--seed", type=int, default=0, help="synthetic world seed (default 0)")
    parser.add_argument("--far-every", type=int, default=2, metavar="N",
                        help="the second overlapped stream runs the long range on every N-th frame (default 2)")
    parser.add_argument("--overlap", type=int, default=1, metavar="N",
                        help="frames started ahead in a second thread, as replay and the node run (default 1; 0: "
                             "one frame at a time)")


def register(verbs) -> None:
    parser = verbs.add_parser("pipeline", help="benchmark the full pipeline (the same as plain `perception bench`)",
                              description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from perception.bench.pipeline import bench_pipeline
    from perception.cli.common import print_json
    from perception.errors import InputError

    if args.threads is not None and args.threads < 1:
        raise InputError("must be at least 1", subject="--threads")
    if args.overlap < 0:
        raise InputError("must not be negative", subject="--overlap")
    if args.far_every < 1:
        raise InputError("must be at least 1", subject="--far-every")
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    result = bench_pipeline(frames=args.frames, warmup=args.warmup, sizes=sizes, distinct=args.distinct,
                            threads=args.threads, euroc=not args.no_euroc, int8=not args.no_int8, seed=args.seed,
                            overlap=args.overlap, far_every=args.far_every)
    if args.json:
        print_json(result)
        return 0
    print(text(result))
    sys.stdout.flush()
    return 0


def text(r: dict) -> str:
    lines = [f"backend {r['backend']}, precision {r['precision']}, cores {r['cores']}, threads {r['threads'] or 'auto'}"]
    for size, s in r["sizes"].items():
        b = r["baseline"]["sizes"][size]
        lines.append(f"{size}: {s['fps']:.2f} frames/s overlapped ({s['sequential']['fps']:.2f} one at a time, "
                     f"{s['long_range_every_n']['fps']:.2f} with the long range every "
                     f"{r['long_range_every_n']['every_n_frames']} frames), "
                     f"p50 {s['latency_p50_ms']:.1f} ms, p99 {s['latency_p99_ms']:.1f} ms"
                     f"  (baseline {b['fps']:.2f} frames/s)")
    lines.append(f"stages at {r['main_size']} (mean ms): " + ", ".join(f"{k} {v:.1f}" for k, v in r["stages_ms"].items()))
    i8 = r.get("int8")
    if i8 and "fps" in i8:
        lines.append(f"int8 at {i8['size']}: {i8['fps']:.2f} frames/s vs fp32 {i8['fp32']['fps']:.2f} "
                     f"(x{i8['speedup_vs_fp32']}); per network: {i8['stage_speedup_vs_fp32']}")
    e = r.get("euroc")
    if e:
        lines.append(f"euroc: {e['note']}" if e.get("skipped") else
                     f"euroc {e['size']}: {e['fps']:.2f} frames/s, p50 {e['latency_p50_ms']:.1f} ms "
                     f"(baseline {e['baseline']['fps']:.2f} frames/s)")
    lines.append(f"peak RSS {r['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)
