"""Multi-object tracker: constant-velocity Kalman filters on the ground plane, association by IoU and 3-D distance.

Positions are ground-plane (x, y) in the frame the caller gives (base_link: x forward, y left, so velocities are
RELATIVE to the vehicle, which is what time to collision needs; pass odom positions for world velocities).
Each frame: every track is predicted to the frame's stamp; detections of the same class are associated greedily
by cost = 1 - IoU (boxes) when both have no position, else the 3-D distance gate decides (distance within
`gate_m` + `gate_rel` * range) with IoU breaking ties; unmatched detections start tentative tracks, which are
confirmed after `min_hits` hits; tracks missed for more than `max_missed` frames end. Detections without a
position (no stereo) are tracked in the image only (IoU), with no velocity.

Time to collision: range / closing speed (closing = -d range / dt from the filter), inf when not closing.

Clock jumps: the filters need the time between frames. A frame stamped more than `back_s` BEFORE the previous one
(a replayed bag, a sim-time reset) or more than `max_gap_s` after it (a forward jump, or a stream that stalled) ends
every track: predicting across such a step would give meaningless positions, velocities and times to collision.
The reset is counted in `resets` by reason ("clock jumped back", "stamp gap") and logged; tracking starts afresh
with that frame. A state that is not finite after an update ends its track the same way ("non-finite state").
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from perception.detect.decode import iou_matrix
from perception.params import param, validate_config

log = logging.getLogger("perception.detect")


@dataclass(frozen=True)
class TrackerConfig:
    min_hits: int = param(2, "detections before a track is confirmed", 1, 100)
    max_missed: int = param(3, "frames a track survives without a detection", 0, 1000)
    iou_min: float = param(0.2, "least box IoU to associate without positions", 0.0, 1.0)
    gate_m: float = param(1.5, "3-D association gate, m (plus gate_rel x range)", 0.0, 100.0)
    gate_rel: float = param(0.08, "3-D gate growth with range (stereo error grows with it)", 0.0, 1.0)
    accel_sigma: float = param(2.0, "process noise: acceleration std, m/s^2", 0.0, 100.0)
    meas_sigma_rel: float = param(0.03, "position measurement std as a share of range", 0.0, 1.0)
    meas_sigma_min: float = param(0.1, "least position measurement std, m", 0.0, 10.0)
    min_closing: float = param(0.2, "least closing speed (m/s) for a finite time to collision", 0.0, 100.0)

    def __post_init__(self) -> None:
        validate_config(self)


@dataclass
class Track:
    track_id: int
    class_id: str
    box: np.ndarray  # x0 y0 x1 y1 (latest detection)
    score: float
    stamp_s: float
    x: np.ndarray | None = None  # state x, y, vx, vy
    P: np.ndarray | None = None
    hits: int = 1
    missed: int = 0
    age: int = 1
    history: list = field(default_factory=list)

    @property
    def position(self) -> tuple[float, float] | None:
        return None if self.x is None else (float(self.x[0]), float(self.x[1]))

    @property
    def velocity(self) -> tuple[float, float] | None:
        return None if self.x is None or self.hits < 2 else (float(self.x[2]), float(self.x[3]))

    @property
    def range_m(self) -> float | None:
        return None if self.x is None else float(np.hypot(self.x[0], self.x[1]))

    def closing_speed(self) -> float | None:
        """-d range / dt (m/s), positive when approaching; None without a velocity."""
        if self.velocity is None:
            return None
        p, v = self.x[:2], self.x[2:]
        r = float(np.linalg.norm(p))
        return float(-(p @ v) / r) if r > 1e-6 else None

    def ttc(self, min_closing: float = 0.2) -> float:
        c = self.closing_speed()
        if c is None or c < min_closing:
            return float("inf")
        return self.range_m / c


class Tracker:
    """`max_gap_s` / `back_s`: the largest step forward / backward between frame stamps that tracks survive."""

    def __init__(self, config: TrackerConfig = TrackerConfig(), *, max_gap_s: float = 2.0,
                 back_s: float = 1e-3) -> None:
        if not (max_gap_s > 0 and back_s >= 0):
            raise ValueError("max_gap_s must be > 0 and back_s >= 0")
        self.config = config
        self.max_gap_s = float(max_gap_s)
        self.back_s = float(back_s)
        self.tracks: list[Track] = []
        self._next = 1
        self.stamp_s: float | None = None  # the previous frame's stamp
        self.resets: Counter = Counter()

    def reset(self) -> None:
        self.tracks, self._next = [], 1

    def _check_clock(self, stamp_s: float) -> None:
        """End every track when the stamp steps back more than back_s or forward more than max_gap_s."""
        last, self.stamp_s = self.stamp_s, stamp_s
        if last is None:
            return
        dt = stamp_s - last
        reason = "clock jumped back" if dt < -self.back_s else "stamp gap" if dt > self.max_gap_s else None
        if reason is None:
            return
        self.resets[reason] += 1
        if self.tracks:
            log.warning("tracker: %s (%.3f s -> %.3f s, step %+.3f s): %d track(s) ended, tracking restarts",
                        reason, last, stamp_s, dt, len(self.tracks))
        self.tracks = []  # ids keep counting up: a new track never reuses an old id

    def _predict(self, t: Track, stamp_s: float) -> None:
        dt = stamp_s - t.stamp_s
        if t.x is None or dt <= 0:
            return
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        q = self.config.accel_sigma ** 2
        G = np.array([[dt * dt / 2, 0], [0, dt * dt / 2], [dt, 0], [0, dt]])
        t.x = F @ t.x
        t.P = F @ t.P @ F.T + G @ G.T * q
        t.stamp_s = stamp_s

    def _sigma(self, xy) -> float:
        return max(self.config.meas_sigma_min, self.config.meas_sigma_rel * float(np.hypot(*xy)))

    def _update(self, t: Track, xy, box, score: float, stamp_s: float) -> None:
        t.box, t.score, t.hits, t.missed, t.age = np.asarray(box, np.float32), score, t.hits + 1, 0, t.age + 1
        t.stamp_s = stamp_s
        if xy is None:
            return
        z = np.asarray(xy, np.float64)
        if t.x is None:
            t.x = np.array([z[0], z[1], 0.0, 0.0])
            t.P = np.diag([self._sigma(z) ** 2] * 2 + [25.0, 25.0])
            return
        H = np.zeros((2, 4))
        H[0, 0] = H[1, 1] = 1.0
        R = np.eye(2) * self._sigma(z) ** 2
        S = H @ t.P @ H.T + R
        K = t.P @ H.T @ np.linalg.inv(S)
        t.x = t.x + K @ (z - H @ t.x)
        t.P = (np.eye(4) - K @ H) @ t.P
        t.history.append((stamp_s, float(z[0]), float(z[1])))
        del t.history[:-20]

    def update(self, detections, stamp_s: float, positions=None) -> list[Track]:
        """Associate this frame's detections (Detection2D; `positions`: per detection (x, y) ground-plane or None,
        default from `det.position` as camera X, Z). Sets each detection's `track_id`; returns confirmed tracks."""
        cfg = self.config
        stamp_s = float(stamp_s)
        if not math.isfinite(stamp_s):
            raise ValueError(f"stamp_s must be finite, got {stamp_s}")
        self._check_clock(stamp_s)
        if positions is None:
            positions = [None if d.position is None else (d.position[2], -d.position[0]) for d in detections]
        for t in self.tracks:
            self._predict(t, stamp_s)
        boxes = np.array([d.corners for d in detections], np.float32).reshape(-1, 4)
        tboxes = np.array([t.box for t in self.tracks], np.float32).reshape(-1, 4)
        ious = iou_matrix(boxes, tboxes)
        pairs = []
        for i, det in enumerate(detections):
            for j, t in enumerate(self.tracks):
                if t.class_id != det.class_id:
                    continue
                p = positions[i]
                if p is not None and t.x is not None:
                    dist = float(np.hypot(p[0] - t.x[0], p[1] - t.x[1]))
                    if dist > cfg.gate_m + cfg.gate_rel * float(np.hypot(*p)):
                        continue
                    cost = dist / (cfg.gate_m + cfg.gate_rel * float(np.hypot(*p))) + (1.0 - ious[i, j])
                elif ious[i, j] >= cfg.iou_min:
                    cost = 2.0 * (1.0 - ious[i, j])
                else:
                    continue
                pairs.append((cost, i, j))
        used_d, used_t = set(), set()
        for cost, i, j in sorted(pairs):
            if i in used_d or j in used_t:
                continue
            used_d.add(i), used_t.add(j)
            t = self.tracks[j]
            self._update(t, positions[i], boxes[i], detections[i].score, stamp_s)
        for j, t in enumerate(self.tracks):
            if j not in used_t:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= cfg.max_missed]
        broken = [t for t in self.tracks if t.x is not None and not (np.isfinite(t.x).all() and np.isfinite(t.P).all())]
        if broken:
            self.resets["non-finite state"] += len(broken)
            log.warning("tracker: %d track(s) with a non-finite state ended", len(broken))
            gone = {id(t) for t in broken}
            self.tracks = [t for t in self.tracks if id(t) not in gone]
        for i, det in enumerate(detections):
            if i not in used_d:
                t = Track(self._next, det.class_id, boxes[i], det.score, stamp_s)
                self._next += 1
                t.hits = 0
                self._update(t, positions[i], boxes[i], det.score, stamp_s)
                self.tracks.append(t)
        confirmed = []
        box_of = {tuple(np.round(t.box, 3)): t for t in self.tracks if t.missed == 0}
        for det in detections:
            t = box_of.get(tuple(np.round(np.asarray(det.corners, np.float32), 3)))
            if t is not None and t.hits >= cfg.min_hits:
                det.track_id = str(t.track_id)
        for t in self.tracks:
            if t.hits >= cfg.min_hits and t.missed == 0:
                confirmed.append(t)
        return confirmed
