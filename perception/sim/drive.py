"""Vehicle motion along the road, the stereo camera mount, and the lighting/exposure schedule of the drive.

Frames: odom (world, z up, origin = base_link at frame 0), base_link (REP-103: x forward, y left, z up, on the
ground under the vehicle centre), left_camera_optical_frame (z forward, x right, y down), right camera = left
camera shifted by +baseline along its own x axis.
Everything here is a closed-form function of the frame index, so frames can be rendered in any order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.sim.config import SimConfig
from perception.sim.path import LANE_OFFSET, RoadPath
from perception.sim.terrain import Terrain

WHEELBASE = 2.4
TRACK = 1.6


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def quaternion(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation matrix."""
    w = np.sqrt(max(0.0, 1.0 + R[0, 0] + R[1, 1] + R[2, 2])) / 2
    x = np.sqrt(max(0.0, 1.0 + R[0, 0] - R[1, 1] - R[2, 2])) / 2
    y = np.sqrt(max(0.0, 1.0 - R[0, 0] + R[1, 1] - R[2, 2])) / 2
    z = np.sqrt(max(0.0, 1.0 - R[0, 0] - R[1, 1] + R[2, 2])) / 2
    x = np.copysign(x, R[2, 1] - R[1, 2])
    y = np.copysign(y, R[0, 2] - R[2, 0])
    z = np.copysign(z, R[1, 0] - R[0, 1])
    q = np.array([x, y, z, w])
    return q / np.linalg.norm(q)


def optical_in_base(pitch_down: float) -> np.ndarray:
    """Rotation base_link <- optical frame for a camera looking forward, pitched down by `pitch_down` (rad)."""
    c, s = np.cos(pitch_down), np.sin(pitch_down)
    x_opt = [0.0, -1.0, 0.0]
    y_opt = [-s, 0.0, -c]
    z_opt = [c, 0.0, -s]
    return np.array([x_opt, y_opt, z_opt]).T


@dataclass
class VehicleState:
    index: int
    s: float  # arc length along the road
    position: np.ndarray  # base_link in odom
    R: np.ndarray  # odom <- base_link
    yaw: float
    pitch: float
    roll: float
    velocity: np.ndarray  # odom frame, m/s

    def matrix(self) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3] = self.R
        T[:3, 3] = self.position
        return T


class Drive:
    def __init__(self, rng: np.random.Generator, cfg: SimConfig, path: RoadPath, terrain: Terrain):
        self.cfg = cfg
        self.path = path
        self.terrain = terrain
        b = cfg.bumps
        self.bump_pitch = [(rng.uniform(1.5, 7.0), rng.uniform(0, 2 * np.pi), b * np.radians(rng.uniform(0.3, 0.8)))
                           for _ in range(3)]
        self.bump_roll = [(rng.uniform(2.0, 9.0), rng.uniform(0, 2 * np.pi), b * np.radians(rng.uniform(0.3, 0.7)))
                          for _ in range(3)]
        self.bump_z = [(rng.uniform(1.0, 4.0), rng.uniform(0, 2 * np.pi), b * rng.uniform(0.005, 0.015)) for _ in range(2)]
        self.light = [(rng.uniform(12.0, 30.0), rng.uniform(0, 2 * np.pi)), (rng.uniform(5.0, 10.0), rng.uniform(0, 2 * np.pi)),
                      (rng.uniform(20.0, 40.0), rng.uniform(0, 2 * np.pi))]
        T = np.eye(4)
        T[:3, :3] = optical_in_base(np.radians(cfg.pitch_deg))
        T[:3, 3] = [cfg.camera_forward, cfg.baseline / 2, cfg.camera_height]
        self.T_base_left = T
        Tr = T.copy()
        Tr[:3, 3] = T[:3, 3] + T[:3, 0] * cfg.baseline
        self.T_base_right = Tr

    def time(self, i: int) -> float:
        return i / self.cfg.fps

    def state(self, i: int) -> VehicleState:
        s = self.cfg.speed * self.time(i)
        (xy, yaw) = self.path.offset(s, LANE_OFFSET)
        xy = np.asarray(xy, float)
        fwd = np.array([np.cos(yaw), np.sin(yaw)])
        left = np.array([-np.sin(yaw), np.cos(yaw)])
        pts = np.array([xy + fwd * WHEELBASE / 2, xy - fwd * WHEELBASE / 2, xy + left * TRACK / 2, xy - left * TRACK / 2])
        h = self.terrain.height(pts[:, 0].astype(np.float32), pts[:, 1].astype(np.float32)).astype(float)
        pitch = np.arctan2(h[1] - h[0], WHEELBASE) + sum(a * np.sin(2 * np.pi * s / lam + ph) for lam, ph, a in self.bump_pitch)
        roll = np.arctan2(h[2] - h[3], TRACK) + sum(a * np.sin(2 * np.pi * s / lam + ph) for lam, ph, a in self.bump_roll)
        z = h.mean() + sum(a * np.sin(2 * np.pi * s / lam + ph) for lam, ph, a in self.bump_z)
        R = rot_z(yaw) @ rot_y(pitch) @ rot_x(roll)
        speed = self.cfg.speed
        vel = np.array([np.cos(yaw) * speed, np.sin(yaw) * speed, 0.0])
        return VehicleState(i, s, np.array([xy[0], xy[1], z]), R, float(yaw), float(pitch), float(roll), vel)

    def cameras(self, state: VehicleState) -> tuple[np.ndarray, np.ndarray]:
        """odom <- left optical and odom <- right optical (4x4) for a vehicle state."""
        Tw = state.matrix()
        return Tw @ self.T_base_left, Tw @ self.T_base_right

    def _sun(self, t: float) -> float:
        (t1, p1), (t2, p2), _ = self.light
        v = self.cfg.exposure_variation
        return float(np.clip(1.0 + v * (0.2 * np.sin(2 * np.pi * t / t1 + p1) + 0.08 * np.sin(2 * np.pi * t / t2 + p2)),
                             0.4, 1.6))

    def lighting(self, i: int) -> dict:
        """Sun strength (thin clouds and haze come and go) and camera exposure (an auto-exposure that compensates
        half of the change, 1.5 s late, plus a slow drift) at frame i: the image brightness changes along the drive."""
        t = self.time(i)
        t3, p3 = self.light[2]
        v = self.cfg.exposure_variation
        exposure = (1.0 + v * 0.06 * np.sin(2 * np.pi * t / t3 + p3)) / (0.5 + 0.5 * self._sun(t - 1.5))
        return {"sun": self._sun(t), "exposure": float(np.clip(exposure, 0.5, 2.0))}
