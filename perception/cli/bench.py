"""`perception bench [pipeline|engines|soak]`: speed and memory benchmarks.

Plain `perception bench` is the full-pipeline benchmark (`perception bench pipeline` is the same); the sub-verbs
`engines` (one model fp32 vs INT8) and `soak` (memory and latency over many frames) are separate measurements.
"""
from perception.cli import bench_engines, bench_pipeline, bench_soak


def register(sub) -> None:
    help_text = "speed and memory benchmarks (plain: the full pipeline)"
    parser = sub.add_parser(
        "bench", help=help_text,
        description=f"{help_text}. Without a sub-command: {bench_pipeline.DESCRIPTION} The options below are "
        "for the plain form; a sub-command takes its own options after its name (`perception bench soak --help`).")
    bench_pipeline.add_arguments(parser)
    parser.set_defaults(func=bench_pipeline.run)
    verbs = parser.add_subparsers(dest="bench_command", metavar="[SUBCOMMAND]", required=False)
    bench_pipeline.register(verbs)
    bench_engines.register(verbs)
    bench_soak.register(verbs)
