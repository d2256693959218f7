"""The dirt road the drive follows: a smooth random curve in the world (odom) plane, parametrised by arc length.

It starts heading along +x (s = 0) with the vehicle's lane (LANE_OFFSET to the side) through the odom origin, and
runs from s = -S_BEHIND to the end of the world's road plus S_AHEAD, so the road is visible to the horizon during
the whole drive.
"""
from __future__ import annotations

import numpy as np

DS = 0.5  # m between polyline points
S_BEHIND = 80.0
S_AHEAD = 700.0
LANE_OFFSET = -1.0  # m: the vehicle keeps to the right half of the road; odom's origin is its start point
WORLD_STEP = 500.0  # the road (and so the world) is built in steps of this length: short drives share one world


def world_length(drive_length: float) -> float:
    """Length of road the world is built for: the drive rounded up to WORLD_STEP, so the world (hills, trees,
    actors) does not depend on how many frames are rendered from it."""
    return WORLD_STEP * max(1, int(np.ceil(drive_length / WORLD_STEP - 1e-9)))


class RoadPath:
    def __init__(self, rng: np.random.Generator, length: float, *, curviness: float = 1.0):
        s = np.arange(-S_BEHIND, length + S_AHEAD + DS, DS)
        # curvature: a few smooth random waves
        k = np.zeros_like(s)
        for _ in range(4):
            wavelength = rng.uniform(60.0, 400.0)
            k += rng.uniform(0.2, 0.75) * np.sin(2 * np.pi * s / wavelength + rng.uniform(0, 2 * np.pi))
        k *= curviness * 0.02 / 3.0  # radius never below ~50 m
        k[np.abs(s) < 8.0] *= np.abs(s[np.abs(s) < 8.0]) / 8.0  # nearly straight at the start
        i0 = int(round(S_BEHIND / DS))
        heading = np.cumsum(k) * DS
        heading -= heading[i0]
        step = np.stack([np.cos(heading), np.sin(heading)], axis=1) * DS
        xy = np.cumsum(step, axis=0)
        xy -= xy[i0] + np.array([0.0, LANE_OFFSET])  # the lane, not the centre line, starts at the origin
        self.s = s
        self.xy = xy
        self.heading = heading
        self.curvature = k

    def at(self, s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(xy (...,2), heading (...)) at arc length s, linearly interpolated."""
        s = np.asarray(s, dtype=np.float64)
        x = np.interp(s, self.s, self.xy[:, 0])
        y = np.interp(s, self.s, self.xy[:, 1])
        hd = np.interp(s, self.s, self.heading)
        return np.stack([x, y], axis=-1), hd

    def offset(self, s: np.ndarray | float, lateral: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Point `lateral` metres to the left of the centre line at s, and the heading there."""
        xy, hd = self.at(s)
        lateral = np.asarray(lateral, dtype=np.float64)
        left = np.stack([-np.sin(hd), np.cos(hd)], axis=-1)
        return xy + left * lateral[..., None], hd

    def bounds(self) -> tuple[float, float, float, float]:
        return (float(self.xy[:, 0].min()), float(self.xy[:, 1].min()), float(self.xy[:, 0].max()), float(self.xy[:, 1].max()))
