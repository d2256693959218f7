"""`perception bench pipeline|engines`: speed and memory benchmarks."""
from perception.cli import bench_pipeline, bench_engines
from perception.cli.common import add_group


def register(sub) -> None:
    verbs = add_group(sub, "bench", "speed and memory benchmarks")
    bench_pipeline.register(verbs)
    bench_engines.register(verbs)
