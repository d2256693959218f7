"""`perception bench soak`: many frames through the offline replay path, with the memory and latency curves.

A few synthetic frames are rendered once and cycled with fresh headers (`perception.bench.frames.cycle`) through
`perception.pipeline.offline.run_offline` -- the path `perception replay` takes: one stateful `Pipeline`, every
result written to a ROS 2 bag in a temporary folder (deleted at the end). Per frame, the latency is the wall time from
the source handing the frame out to its results being written (pipeline + bag + overlay); every `every` frames the
process RSS is sampled. Reported: the RSS slope after the warm-up (least squares, MB per 1000 frames), RSS at the
first and last sample, and the latency p50 / p99 over the first and the last tenth of the frames.

Storage grows with the bag on disk (not in memory): the bag's bytes per frame are reported, and the run stops early
with an error naming the folder when the disk would fill.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from perception.bench.frames import cycle, parse_size, synthetic_frames
from perception.bench.measure import cores, peak_rss_mb, rss_mb
from perception.errors import InputError
from perception.frame import Frame
from perception.sources.base import FrameSource

DISK_MARGIN = 2 * 2**30  # stop when the bag would leave less than this free


class CycledSource(FrameSource):
    """`count` frames cycled from `frames`; remembers when it handed out the latest one."""

    def __init__(self, frames: list[Frame], count: int) -> None:
        super().__init__()
        self.frames, self.count = frames, count
        self.handed_out = 0.0

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Frame]:
        for frame in cycle(self.frames, self.count):
            self.stats.frames_in += 1
            self.stats.used += 1
            self.handed_out = time.perf_counter()
            yield frame


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


class Recorder:
    """The `on_result` callback: per-frame latency into a preallocated array, RSS every `every` frames."""

    def __init__(self, source: CycledSource, count: int, every: int, bag: Path) -> None:
        self.source, self.every, self.bag = source, every, bag
        self.latency_ms = np.full(count, np.nan, np.float32)
        self.pipeline_ms = np.full(count, np.nan, np.float32)
        self.samples: list[tuple[int, float, float, int]] = []  # (frames done, rss MB, seconds, bag bytes)
        self.n = 0
        self.failed = 0
        self.t0 = time.perf_counter()

    def __call__(self, result) -> None:
        now = time.perf_counter()
        i = self.n
        self.latency_ms[i] = (now - self.source.handed_out) * 1e3
        self.pipeline_ms[i] = sum(result.timings_ms.values())
        self.failed += 0 if result.ok else 1
        self.n += 1
        if self.n % self.every == 0 or self.n == len(self.latency_ms):
            size = _dir_bytes(self.bag)
            self.samples.append((self.n, rss_mb(), now - self.t0, size))
            self._check_disk(size)

    def _check_disk(self, size: int) -> None:
        if self.n < self.every or size <= 0:
            return
        left = (len(self.latency_ms) - self.n) * size / self.n
        free = shutil.disk_usage(self.bag.parent).free
        if left > free - DISK_MARGIN:
            raise InputError(f"the soak's bag would fill the disk ({left / 2**30:.1f} GiB more needed, "
                             f"{free / 2**30:.1f} GiB free)", subject=str(self.bag.parent),
                             hint="use fewer --frames, --no-copy-inputs, --no-overlay, or --tmp on a larger disk")


def _p(a: np.ndarray, q: float) -> float:
    a = a[np.isfinite(a)]
    return round(float(np.percentile(a, q)), 3) if a.size else float("nan")


def summarise(rec: Recorder, warmup: int) -> dict:
    n = rec.n
    frames = np.array([s[0] for s in rec.samples], np.float64)
    rss = np.array([s[1] for s in rec.samples], np.float64)
    after = frames >= warmup
    slope = float(np.polyfit(frames[after], rss[after], 1)[0] * 1000.0) if after.sum() >= 2 else float("nan")
    tenth = max(1, n // 10)
    first, last = rec.latency_ms[:tenth], rec.latency_ms[n - tenth:n]
    p50_first, p50_last = _p(first, 50), _p(last, 50)
    bag = rec.samples[-1][3] if rec.samples else 0
    return {
        "frames_done": n, "frames_failed": rec.failed, "warmup_frames": warmup, "sample_every": rec.every,
        "samples": len(rec.samples),
        "rss_slope_mb_per_1000": round(slope, 3),
        "rss_first_mb": round(float(rss[0]), 1) if rss.size else None,
        "rss_after_warmup_mb": round(float(rss[after][0]), 1) if after.any() else None,
        "rss_last_mb": round(float(rss[-1]), 1) if rss.size else None,
        "rss_max_sampled_mb": round(float(rss.max()), 1) if rss.size else None,
        "latency_p50_first_ms": p50_first, "latency_p50_last_ms": p50_last,
        "latency_p99_first_ms": _p(first, 99), "latency_p99_last_ms": _p(last, 99),
        "latency_last_over_first": round(p50_last / p50_first, 3) if p50_first > 0 else None,
        "latency_p50_ms": _p(rec.latency_ms[:n], 50), "latency_p99_ms": _p(rec.latency_ms[:n], 99),
        "pipeline_p50_first_ms": _p(rec.pipeline_ms[:tenth], 50),
        "pipeline_p50_last_ms": _p(rec.pipeline_ms[n - tenth:n], 50),
        "bag_bytes_per_frame": round(bag / n, 1) if n else None,
        "wall_s": round(rec.samples[-1][2], 2) if rec.samples else 0.0,
        "curve": {"frames": frames.astype(int).tolist(), "rss_mb": [round(v, 2) for v in rss.tolist()]},
    }


def plot(rec: Recorder, path: str | Path, title: str) -> Path:
    from perception.bench.plot import line_chart, save_panels

    frames = [s[0] for s in rec.samples]
    rss = [s[1] for s in rec.samples]
    p50, p99, prev = [], [], 0
    for f in frames:  # latency over each sampling window
        window = rec.latency_ms[prev:f]
        p50.append(_p(window, 50))
        p99.append(_p(window, 99))
        prev = f
    return save_panels(path, [
        line_chart(frames, {"RSS MB": rss}, title=f"{title}: resident memory", xlabel="frames", ylabel="MB",
                   min_span=20.0),
        line_chart(frames, {"p50 ms": p50, "p99 ms": p99}, title="latency per frame (source -> bag), per window",
                   xlabel="frames", ylabel="ms", zero_based=True),
    ])


def soak(*, frames: int = 20000, every: int = 100, size: str = "320x240", distinct: int = 8, warmup: int | None = None,
         plot_path: str | Path | None = None, copy_inputs: bool = True, overlay: bool = True, tmp: str | None = None,
         threads: int | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Run the soak; a JSON-ready dict (docs/performance.md). `warmup` frames (default: a tenth, at least two
    samples' worth) are left out of the RSS slope."""
    from perception.bench.pipeline import with_threads
    from perception.pipeline import Pipeline, PipelineConfig
    from perception.pipeline.offline import run_offline

    if frames < 2:
        raise InputError("must be at least 2", subject="--frames")
    if not 1 <= every <= frames:
        raise InputError(f"must be between 1 and --frames ({frames})", subject="--every")
    parse_size(size)
    warmup = max(frames // 10, 2 * every) if warmup is None else warmup
    if not 0 <= warmup < frames:
        raise InputError(f"must be between 0 and --frames - 1 ({frames - 1})", subject="--warmup")
    rendered = synthetic_frames(size, min(distinct, frames), seed=seed, progress=progress)
    config = with_threads(PipelineConfig(), threads)
    print(f"soak: {frames} frames at {size} ({len(rendered)} distinct, cycled), RSS every {every}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="perception-soak-", dir=tmp) as folder:
        bag = Path(folder) / "soak.mcap"
        source = CycledSource(rendered, frames)
        rec = Recorder(source, frames, every, bag)
        pipeline = Pipeline(config)
        try:
            summary = run_offline(source, bag, pipeline=pipeline, total=frames, on_result=rec, progress=progress,
                                  copy_inputs=copy_inputs, overlay=overlay)
        finally:
            pipeline.close()
        messages = summary.messages_written
    out = {"size": size, "frames": frames, "distinct_frames": len(rendered), "copy_inputs": copy_inputs,
           "overlay": overlay, "cores": cores(), "threads": threads if threads is not None else 0,
           "messages_written": messages, **summarise(rec, warmup), "peak_rss_mb": round(peak_rss_mb(), 1)}
    if plot_path is not None:
        out["plot"] = str(plot(rec, plot_path, f"soak {frames} frames at {size}"))
    return out
