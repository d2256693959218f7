"""What a perception node reports on /diagnostics: per-stage timing, frame counts and drops by reason.

Plain Python (no rclpy): the node keeps a `NodeCounters`, and `statuses()` turns it and the pipeline's stage
times into `perception.io.messages.DiagnosticStatus` values (published as diagnostic_msgs/DiagnosticArray).

One status per node, named "<node>: pipeline", with the keys
  frames_in, frames_processed, frames_idle, dropped, dropped.<reason>, fps, last_frame_ms,
  stage.<stage>.{n, last_ms, mean_ms, p50_ms, p99_ms, max_ms}, outputs.<topic>.{published, skipped_no_subscriber,
  subscribers}, inputs.<topic>.publishers
and level WARN while frames are being dropped (in the last period), ERROR when frames come in but none is
processed, OK otherwise.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

from perception.io.messages import DiagnosticStatus


class NodeCounters:
    """Thread-safe counters of one node (input callbacks and the pipeline worker both write them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frames_in = 0  # synchronised frames handed to the pipeline queue
        self.frames_processed = 0
        self.frames_idle = 0  # skipped: no subscriber to any output (`lazy`)
        self.dropped: Counter = Counter()
        self.published: Counter = Counter()
        self.skipped_no_subscriber: Counter = Counter()
        self.last_stage_ms: dict[str, float] = {}
        self.last_frame_ms = 0.0
        self._last_report = (time.monotonic(), 0, 0)  # time, processed, dropped

    def drop(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self.dropped[reason] += n

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def output(self, topic: str, published: bool) -> None:
        with self._lock:
            (self.published if published else self.skipped_no_subscriber)[topic] += 1

    def frame_done(self, timings_ms: dict[str, float], total_ms: float) -> None:
        with self._lock:
            self.frames_processed += 1
            self.last_stage_ms = dict(timings_ms)
            self.last_frame_ms = total_ms

    def statuses(self, node_name: str, stage_summary: dict[str, dict[str, float]], *, hardware_id: str = "",
                 subscribers: dict[str, int] | None = None,
                 publishers: dict[str, int] | None = None,
                 resets: dict[str, int] | None = None) -> list[DiagnosticStatus]:
        with self._lock:
            now = time.monotonic()
            t0, processed0, dropped0 = self._last_report
            dropped_total = sum(self.dropped.values())
            period = max(now - t0, 1e-6)
            fps = (self.frames_processed - processed0) / period
            new_drops = dropped_total - dropped0
            self._last_report = (now, self.frames_processed, dropped_total)
            values: dict[str, object] = {
                "frames_in": self.frames_in,
                "frames_processed": self.frames_processed,
                "frames_idle": self.frames_idle,
                "dropped": dropped_total,
                "fps": round(fps, 2),
                "last_frame_ms": round(self.last_frame_ms, 3),
            }
            for reason, n in sorted(self.dropped.items()):
                values[f"dropped.{reason}"] = n
            for stage, summary in stage_summary.items():
                if stage in self.last_stage_ms:
                    values[f"stage.{stage}.last_ms"] = round(self.last_stage_ms[stage], 3)
                for key, value in summary.items():
                    values[f"stage.{stage}.{key}"] = value
            for topic, n in sorted(self.published.items()):
                values[f"outputs.{topic}.published"] = n
            for topic, n in sorted(self.skipped_no_subscriber.items()):
                values[f"outputs.{topic}.skipped_no_subscriber"] = n
            for topic, n in sorted((subscribers or {}).items()):
                values[f"outputs.{topic}.subscribers"] = n
            for topic, n in sorted((publishers or {}).items()):
                values[f"inputs.{topic}.publishers"] = n
            for what, n in sorted((resets or {}).items()):  # state restarted at clock jumps
                values[f"resets.{what}"] = n
            if self.frames_in and not self.frames_processed and dropped_total:
                level, message = 2, f"no frame processed; {dropped_total} dropped"
            elif new_drops:
                level, message = 1, f"{new_drops} frame(s) dropped in the last {period:.1f} s"
            else:
                level, message = 0, f"{self.frames_processed} frame(s) processed"
        return [DiagnosticStatus(name=f"{node_name}: pipeline", level=level, message=message,
                                 hardware_id=hardware_id, values=values)]


__all__ = ["NodeCounters"]
