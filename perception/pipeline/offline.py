"""Offline runs: frames from a source through the pipeline into an output bag, with progress and a summary.

Used by `perception replay` (a recorded bag) and `perception demo` (the synthetic drive). `rate` = 0 runs
as fast as the CPU allows; `rate` = 1.0 paces frames at their recorded stamps (2.0 twice as fast); a jump in
the recorded clock (backwards, or over `MAX_PACED_GAP_NS` forwards) restarts the pacing at that frame.
"""
from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from perception.io.bag_writer import BagWriter
from perception.frame import Frame
from perception.pipeline.core import FrameResult, Pipeline
from perception.pipeline.overlap import overlapped
from perception.pipeline.outputs import write_result
from perception.sources.base import FrameSource


MAX_PACED_GAP_NS = 5_000_000_000  # a stamp step back, or forward by more than this, is a clock jump, not a pause


@dataclass
class RunSummary:
    frames_in: int = 0
    used: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    wall_s: float = 0.0
    out: str = ""
    messages_written: int = 0
    resets: dict[str, int] = field(default_factory=dict)  # state restarted at clock jumps (Pipeline.resets)

    @property
    def fps(self) -> float:
        return self.used / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "frames_in": self.frames_in, "used": self.used, "skipped": self.skipped, "stages": self.stages,
            "wall_s": round(self.wall_s, 3), "fps": round(self.fps, 2), "out": self.out,
            "messages_written": self.messages_written, "resets": self.resets,
        }

    def text(self) -> str:
        lines = [f"frames: {self.frames_in} in, {self.used} used, {sum(self.skipped.values())} skipped"]
        lines += [f"  skipped {n}: {reason}" for reason, n in sorted(self.skipped.items(), key=lambda kv: -kv[1])]
        lines.append(f"time: {self.wall_s:.1f} s, {self.fps:.1f} frames/s")
        lines += [f"  {stage:<10} mean {s['mean_ms']:7.1f} ms  p99 {s['p99_ms']:7.1f} ms" for stage, s in self.stages.items()]
        lines += [f"  restarted {n}x: {what}" for what, n in self.resets.items()]
        lines.append(f"output: {self.out} ({self.messages_written} messages)")
        return "\n".join(lines)


def paced(frames: Iterable[Frame], rate: float) -> Iterator[Frame]:
    """`frames` released at their recorded stamps / `rate` (module docstring); `rate` <= 0: as they come."""
    anchor: tuple[int, float] | None = None  # (stamp, wall time) that pacing counts from
    last_stamp: int | None = None
    for frame in frames:
        if rate > 0:
            stamp = frame.header.stamp_ns
            jumped = last_stamp is not None and not 0 <= stamp - last_stamp <= MAX_PACED_GAP_NS
            if anchor is None or jumped:  # a clock jump in the recording restarts the pacing there
                anchor = (stamp, time.perf_counter())
            last_stamp = stamp
            ahead = (stamp - anchor[0]) * 1e-9 / rate - (time.perf_counter() - anchor[1])
            if ahead > 0:
                time.sleep(ahead)  # pacing to the recorded clock, not synchronisation
        yield frame


def run_offline(source: FrameSource, out: str | Path | None, *, pipeline: Pipeline | None = None, storage: str | None = None,
                overwrite: bool = False, copy_inputs: bool = True, rate: float = 0.0, total: int | None = None,
                on_result: Callable[[FrameResult], None] | None = None, progress: bool = True,
                overlay: bool = True, overlap: int = 1) -> RunSummary:
    """Process every frame of `source`, writing outputs to the bag `out` (None: no bag); return the summary.

    `overlap`: frames started ahead in a worker thread while the current one is finished and written
    (`perception.pipeline.overlap`; 0: one frame at a time)."""
    pipeline = pipeline or Pipeline()
    t_start = time.perf_counter()
    bag = BagWriter(out, storage=storage, overwrite=overwrite) if out is not None else nullcontext()
    with bag as writer, source:
        bar = tqdm(total=total, unit="frame", file=sys.stderr, disable=not progress, desc="perception")
        for result in overlapped(pipeline, paced(source, rate), depth=overlap):
            if writer is not None:
                write_result(writer, result, copy_inputs=copy_inputs, overlay=overlay)
            if on_result is not None:
                on_result(result)
            bar.update(1)
        bar.close()
        messages = sum(writer.message_counts.values()) if writer is not None else 0
    skipped = dict(source.stats.skipped)
    for reason, n in pipeline.stats.skipped.items():
        skipped[reason] = skipped.get(reason, 0) + n
    return RunSummary(
        frames_in=source.stats.frames_in or pipeline.stats.frames_in,
        used=pipeline.stats.used,
        skipped=skipped,
        stages=pipeline.times.summary(),
        wall_s=time.perf_counter() - t_start,
        out=str(out) if out is not None else "",
        messages_written=messages,
        resets=pipeline.resets(),
    )
