"""Collision warnings from tracks: forward collision and pedestrian in path, with configurable zones.

Zones are on the ground plane of base_link (x forward, y left, metres), with tracks' positions and velocities
relative to the vehicle (`perception.detect.tracking`):
- the PATH is the corridor |y| <= `path_half_width` ahead of the vehicle, 0 < x <= `fcw_max_range`;
- FORWARD COLLISION: a confirmed track of a `fcw_classes` class in the path (now, or at any moment within its
  time to collision by its velocity) with time to collision <= `fcw_ttc_s` ("warning"), or <= `fcw_caution_ttc_s`
  ("caution");
- PEDESTRIAN IN PATH: a confirmed track of a `vru_classes` class (pedestrian, cyclist) inside the pedestrian zone
  (|y| <= `vru_half_width`, 0 < x <= `vru_range`), or predicted by its velocity to enter it within
  `vru_horizon_s` ("warning" when inside now, "caution" when predicted).
Warnings carry the input's header (stamp, frame_id) for publishing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.params import param, validate_config

KINDS = ("forward_collision", "pedestrian_in_path")
LEVELS = ("caution", "warning")


@dataclass(frozen=True)
class WarningConfig:
    path_half_width: float = param(1.5, "half width of the vehicle's path corridor, m", 0.1, 20.0)
    fcw_max_range: float = param(60.0, "forward-collision zone length, m", 1.0, 500.0)
    fcw_ttc_s: float = param(2.0, "time to collision that raises a forward-collision warning, s", 0.1, 20.0)
    fcw_caution_ttc_s: float = param(3.5, "time to collision that raises a caution, s", 0.1, 30.0)
    fcw_classes: str = param("pedestrian,cyclist,car,truck", "classes checked for forward collision "
                             "(comma-separated)", choices=None)
    vru_classes: str = param("pedestrian,cyclist", "vulnerable road users for the pedestrian zone "
                             "(comma-separated)", choices=None)
    vru_half_width: float = param(2.5, "half width of the pedestrian zone, m", 0.1, 30.0)
    vru_range: float = param(20.0, "pedestrian zone length, m", 0.5, 200.0)
    vru_horizon_s: float = param(2.0, "look-ahead for a pedestrian entering the zone, s", 0.0, 20.0)
    min_closing: float = param(0.2, "least closing speed for a finite time to collision, m/s", 0.0, 100.0)

    def __post_init__(self) -> None:
        validate_config(self)

    @property
    def fcw_set(self) -> frozenset:
        return frozenset(c.strip() for c in self.fcw_classes.split(",") if c.strip())

    @property
    def vru_set(self) -> frozenset:
        return frozenset(c.strip() for c in self.vru_classes.split(",") if c.strip())


@dataclass
class CollisionWarning:
    kind: str  # forward_collision | pedestrian_in_path
    level: str  # caution | warning
    track_id: int
    class_id: str
    range_m: float
    ttc_s: float  # inf when not closing
    position: tuple[float, float]  # base_link x, y
    message: str
    header: object = None


def _in_zone(x: float, y: float, half_width: float, length: float) -> bool:
    return 0.0 < x <= length and abs(y) <= half_width


def _enters_zone(p, v, half_width: float, length: float, horizon: float, steps: int = 20) -> bool:
    if v is None or horizon <= 0:
        return False
    for t in np.linspace(0.0, horizon, steps + 1)[1:]:
        if _in_zone(p[0] + v[0] * t, p[1] + v[1] * t, half_width, length):
            return True
    return False


def evaluate_warnings(tracks, config: WarningConfig = WarningConfig(), header=None) -> list[CollisionWarning]:
    """Warnings for confirmed tracks (objects with `position`, `velocity`, `range_m`, `ttc()`, `class_id`,
    `track_id`), most urgent first."""
    out = []
    c = config
    for t in tracks:
        p = t.position
        if p is None:
            continue
        v = t.velocity
        ttc = t.ttc(c.min_closing)
        rng = float(np.hypot(*p))
        if t.class_id in c.fcw_set and np.isfinite(ttc) and ttc <= c.fcw_caution_ttc_s:
            in_path = _in_zone(p[0], p[1], c.path_half_width, c.fcw_max_range) or \
                _enters_zone(p, v, c.path_half_width, c.fcw_max_range, ttc)
            if in_path:
                level = "warning" if ttc <= c.fcw_ttc_s else "caution"
                out.append(CollisionWarning("forward_collision", level, t.track_id, t.class_id, rng, ttc,
                                            (float(p[0]), float(p[1])),
                                            f"{level}: {t.class_id} {t.track_id} in path at {rng:.1f} m, "
                                            f"time to collision {ttc:.1f} s", header))
        if t.class_id in c.vru_set:
            inside = _in_zone(p[0], p[1], c.vru_half_width, c.vru_range)
            if inside or _enters_zone(p, v, c.vru_half_width, c.vru_range, c.vru_horizon_s):
                level = "warning" if inside else "caution"
                what = "in path" if inside else "entering path"
                out.append(CollisionWarning("pedestrian_in_path", level, t.track_id, t.class_id, rng, ttc,
                                            (float(p[0]), float(p[1])),
                                            f"{level}: {t.class_id} {t.track_id} {what} at {rng:.1f} m", header))
    out.sort(key=lambda w: (w.level != "warning", w.ttc_s, w.range_m))
    return out
