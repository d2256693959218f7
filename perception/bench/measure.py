"""Timing loops and process memory for the benchmarks.

`time_variants` runs several pipelines on the same frames, interleaved frame by frame in a rotating order, so a
noisy machine slows them alike and their ratios stay honest. Warm-up frames run through every pipeline first and are
not counted. A frame's latency is the wall time of `Pipeline.process` on it; fps is frames / summed latency (one
frame at a time).

`time_stream` runs one pipeline the way replay and the node do, overlapped (`perception.pipeline.overlap`: the
next frame started in a second thread while the current one is finished): fps is timed frames / wall time, and
a frame's latency runs from the moment the source hands it out to its finished result.
"""
from __future__ import annotations

import os
import resource
import sys
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping

import numpy as np
from tqdm import tqdm

from perception.errors import PerceptionError
from perception.frame import Frame
from perception.pipeline.overlap import overlapped


def rss_mb() -> float:
    """Resident set size of this process now, MB (from /proc/self/statm; peak RSS where that is missing)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MB (`ru_maxrss`: kB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def cores() -> dict[str, int]:
    """CPU cores of the machine and those this process may run on."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    return {"cpu_count": os.cpu_count() or 1, "affinity": affinity}


def latency_stats(ms: Iterable[float]) -> dict[str, float]:
    """fps, mean / p50 / p90 / p99 / max of per-frame latencies in ms."""
    a = np.asarray(list(ms), np.float64)
    if a.size == 0:
        raise PerceptionError("no frame was timed", subject="benchmark")
    return {
        "frames": int(a.size),
        "fps": round(1000.0 * a.size / float(a.sum()), 3),
        "latency_mean_ms": round(float(a.mean()), 3),
        "latency_p50_ms": round(float(np.percentile(a, 50)), 3),
        "latency_p90_ms": round(float(np.percentile(a, 90)), 3),
        "latency_p99_ms": round(float(np.percentile(a, 99)), 3),
        "latency_max_ms": round(float(a.max()), 3),
    }


class Timing:
    """Per-frame latencies and per-stage times of one pipeline over the timed frames."""

    def __init__(self) -> None:
        self.latency_ms: list[float] = []
        self.stages: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)

    def add(self, ms: float, result) -> None:
        self.latency_ms.append(ms)
        if result.error:
            self.errors[result.error.split(":")[0][:80]] += 1
        for stage, t in result.timings_ms.items():
            self.stages[stage].append(t)

    def summary(self) -> dict:
        out = latency_stats(self.latency_ms)
        out["stages_ms"] = {s: round(float(np.mean(v)), 3) for s, v in self.stages.items()}
        # a stage that ran on only some frames (e.g. no ground plane) is averaged over the frames it ran on
        out["stages_frames"] = {s: len(v) for s, v in self.stages.items()}
        out["frames_failed"] = int(sum(self.errors.values()))
        if self.errors:
            out["errors"] = dict(self.errors)
        return out


def time_variants(pipelines: Mapping[str, object], frames: Iterable[Frame], *, warmup: int, total: int | None = None,
                  desc: str = "bench", progress: bool = True) -> dict[str, Timing]:
    """Run each named pipeline on every frame (rotating the order per frame); the first `warmup` frames are not
    counted. Returns a `Timing` per name."""
    names = list(pipelines)
    timings = {n: Timing() for n in names}
    bar = tqdm(total=total, unit="frame", file=sys.stderr, disable=not progress, desc=desc)
    for i, frame in enumerate(frames):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            pipeline = pipelines[name]
            t0 = time.perf_counter()
            result = pipeline.process(frame)
            ms = (time.perf_counter() - t0) * 1e3
            if i >= warmup:
                timings[name].add(ms, result)
        bar.update(1)
    bar.close()
    return timings


def time_stream(pipeline, frames: Iterable[Frame], *, warmup: int, depth: int = 1, total: int | None = None,
                desc: str = "stream", progress: bool = True) -> dict:
    """Throughput and latency of `pipeline` over `frames`, overlapped `depth` frames ahead (module docstring);
    the first `warmup` results are not counted. `Timing.summary()` keys, `fps` from the wall time."""
    handed: deque[float] = deque()  # hand-out times, in frame order (results come in that order)

    def handed_out():
        for frame in frames:
            handed.append(time.perf_counter())
            yield frame

    timing = Timing()
    bar = tqdm(total=total, unit="frame", file=sys.stderr, disable=not progress, desc=desc)
    t_first = t_last = None
    for i, result in enumerate(overlapped(pipeline, handed_out(), depth=depth)):
        now = time.perf_counter()
        ms = (now - handed.popleft()) * 1e3
        if i == warmup - 1 or (warmup == 0 and i == 0):
            t_first = now  # timing starts when the last warm-up frame is out (or at the first result)
        if i >= warmup:
            timing.add(ms, result)
            t_last = now
        bar.update(1)
    bar.close()
    out = timing.summary()
    counted = len(timing.latency_ms) - (1 if warmup == 0 else 0)
    if t_first is not None and t_last is not None and t_last > t_first and counted > 0:
        out["fps"] = round(counted / (t_last - t_first), 3)
    out["overlap"] = depth
    return out
