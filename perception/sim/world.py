"""`SimWorld`: build a world from a `SimConfig` and render frame i of the drive as a `perception.frame.Frame`."""
from __future__ import annotations

import cv2
import numpy as np

from perception.camera.model import CameraInfo
from perception.frame import Frame, Header, Pose
from perception.sim import config as C
from perception.sim import shading as S
from perception.sim import truth as T
from perception.sim.drive import Drive, quaternion
from perception.sim.path import RoadPath, world_length
from perception.sim.render import Renderer
from perception.sim.scene import Scene
from perception.sim.textures import TextureBank
from perception.sim.terrain import Terrain

LEFT_FRAME = "left_camera_optical_frame"
RIGHT_FRAME = "right_camera_optical_frame"
SHADOW_RES = 0.5
SHADOW_MARGIN = 120.0


class SimWorld:
    """A procedural outdoor drive with a calibrated stereo pair and full ground truth (see `perception.sim`)."""

    def __init__(self, config: C.SimConfig | None = None, **overrides):
        cfg = config if config is not None else C.SimConfig(**overrides)
        if config is not None and overrides:
            raise TypeError("pass either a SimConfig or keyword overrides, not both")
        self.cfg = cfg
        # independent random streams, so e.g. more actors do not move the hills
        seeds = np.random.SeedSequence(cfg.seed).spawn(6)
        rng = [np.random.default_rng(s) for s in seeds]
        self.length = world_length(cfg.drive_length)
        self.path = RoadPath(rng[0], self.length)
        self.terrain = Terrain(rng[1], self.path, cfg)
        self.bank = TextureBank(rng[2])
        self.scene = Scene(rng[3], cfg, self.path, self.terrain, self.bank.object_tile, self.length)
        self.drive = Drive(rng[4], cfg, self.path, self.terrain)
        lr = rng[5]
        az, el = lr.uniform(0, 2 * np.pi), np.radians(lr.uniform(30.0, 55.0))
        self.sun_dir = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        wind_az = lr.uniform(0, 2 * np.pi)
        self.wind = lr.uniform(4.0, 10.0) * np.array([np.cos(wind_az), np.sin(wind_az)])
        self.coverage = float(lr.uniform(0.25, 0.5))
        objs = self.scene.objects
        self.obj_terrain = np.array([C.OBJECT_TERRAIN[o.cls] for o in objs] or [0], np.uint8)
        self.obj_semantic = np.array([C.OBJECT_SEMANTIC[o.cls] for o in objs] or [0], np.uint8)
        fx = (cfg.width / 2) / np.tan(np.radians(cfg.hfov_deg) / 2)
        cx, cy = (cfg.width - 1) / 2, (cfg.height - 1) / 2
        self.left_info = CameraInfo.from_intrinsics(cfg.width, cfg.height, fx, fx, cx, cy, frame_id=LEFT_FRAME, name="left")
        self.right_info = CameraInfo.from_intrinsics(cfg.width, cfg.height, fx, fx, cx, cy, baseline=cfg.baseline,
                                                     frame_id=RIGHT_FRAME, name="right")
        self.shadow_map = self._shadow_map()
        level = 2  # cloud shadows: the cloud tile blurred to 64 x 64 texels (~100 m), sampled once per pixel
        k = self.bank.object_tile["cloud"]
        s = 256 >> level
        cloud = self.bank.atlas[level][1:s + 1, k * (s + 2) + 1:k * (s + 2) + 1 + s, 0]
        self.cloud_shadow = {"grid": np.ascontiguousarray(cloud), "texel": 24.0 * (1 << level)}
        self.renderer = Renderer(self)
        self._maps: dict = {}

    def __len__(self) -> int:
        return self.cfg.frames

    @property
    def T_base_left(self) -> np.ndarray:
        """base_link <- left_camera_optical_frame (static)."""
        return self.drive.T_base_left.copy()

    @property
    def T_base_right(self) -> np.ndarray:
        return self.drive.T_base_right.copy()

    def change_active(self, i: int) -> bool:
        return self.cfg.change != "none" and i >= self.cfg.change_frame

    def traversability_map(self, i: int | None = None) -> dict:
        """Top-down map of the world as it is at frame i (default: the last frame). Keys: terrain_class (uint8 HxW),
        traversability (float32), cost (uint8, 0..254), obstacle (bool: a static object stands there), resolution (m), origin (x, y of the corner of cell [0, 0] in
        odom), frame_id, width, height; row index grows with y, column index with x."""
        i = self.cfg.frames - 1 if i is None else i
        absent = self.cfg.change_class if (self.cfg.change == "new_class" and not self.change_active(i)) else None
        if absent not in self._maps:
            self._maps[absent] = T.top_down_map(self, absent)
        return self._maps[absent]

    def lighting(self, i: int) -> S.Lighting:
        lt = self.drive.lighting(i)
        return S.Lighting(self.sun_dir, lt["sun"], lt["exposure"], self.wind, self.drive.time(i), self.coverage)

    def render(self, i: int) -> Frame:
        """Frame i: left/right BGR images, camera infos, header, odom pose and the truth dict."""
        if not 0 <= i < self.cfg.frames:
            raise IndexError(f"frame {i} is outside the drive (0..{self.cfg.frames - 1})")
        cfg = self.cfg
        state = self.drive.state(i)
        T_left, T_right = self.drive.cameras(state)
        prims, actors = self.scene.prims_at(self.drive.time(i))
        light = self.lighting(i)
        active = self.change_active(i)
        left = self.renderer.render(self.left_info, T_left, prims, light, change_active=active,
                                    rng=np.random.default_rng([cfg.seed, i, 0]), truth=True)
        right = self.renderer.render(self.right_info, T_right, prims, light, change_active=active,
                                     rng=np.random.default_rng([cfg.seed, i, 1]), truth=False,
                                     guide=(left.ground_depth, self.left_info.fx * cfg.baseline))
        fxb = np.float32(self.left_info.fx * cfg.baseline)
        with np.errstate(divide="ignore"):
            disparity = (fxb / left.depth).astype(np.float32)
        trav = np.asarray(C.TRAVERSABILITY + (0.0,) * (256 - len(C.TRAVERSABILITY)), np.float32)[left.terrain]
        trav[left.terrain == C.TERRAIN_NONE] = 0.0
        trav[left.semantic == C.SKY] = np.nan
        truth = {
            "depth": left.depth, "disparity": disparity, "depth_right": right.depth,
            "terrain_class": left.terrain, "traversability": trav, "semantic": left.semantic, "instance": left.instance,
            "objects": T.object_list(self, left, T_left, self.left_info, actors),
            "camera_pose": T_left, "camera_pose_right": T_right, "T_base_camera": self.T_base_left,
            "horizon_row": T.horizon_row(T_left, self.left_info),
            "roll": state.roll, "pitch": state.pitch, "yaw": state.yaw, "velocity": state.velocity,
            "frame_index": i, "time_s": self.drive.time(i),
            "change": {"frame": cfg.change_frame, "kind": cfg.change, "class": cfg.change_class,
                       "class_name": C.TERRAIN_CLASSES[cfg.change_class], "active": active},
            "change_frame": cfg.change_frame,
            "lighting": {"sun": light.sun, "exposure": light.exposure, "sun_direction": self.sun_dir.tolist()},
            "map": self.traversability_map(i),
        }
        stamp = cfg.epoch_ns + int(round(i * 1e9 / cfg.fps))
        pose = Pose(position=state.position.copy(), orientation=quaternion(state.R), frame="odom", child_frame="base_link")
        return Frame(header=Header(stamp, LEFT_FRAME), left=left.image, right=right.image, left_info=self.left_info,
                     right_info=self.right_info, rectified=True, pose=pose, index=i, truth=truth)

    def __iter__(self):
        for i in range(self.cfg.frames):
            yield self.render(i)

    # --- static object shadows on the ground ------------------------------------------------------------------------
    def _shadow_map(self) -> dict:
        x0, y0, x1, y1 = self.path.bounds()
        x0, y0, x1, y1 = x0 - SHADOW_MARGIN, y0 - SHADOW_MARGIN, x1 + SHADOW_MARGIN, y1 + SHADOW_MARGIN
        nx, ny = int((x1 - x0) / SHADOW_RES) + 1, int((y1 - y0) / SHADOW_RES) + 1
        grid = np.zeros((ny, nx), np.uint8)
        L = self.sun_dir
        shift = -L[:2] / L[2]  # ground offset of a point's shadow per metre of height
        for o in self.scene.objects[:self.scene.n_static]:
            if not (x0 - 40 < o.xy[0] < x1 + 40 and y0 - 40 < o.xy[1] < y1 + 40):
                continue
            for p in o.prims:
                cx, cy = o.xy[0] + np.cos(o.yaw) * p.centre[0] - np.sin(o.yaw) * p.centre[1], \
                    o.xy[1] + np.sin(o.yaw) * p.centre[0] + np.cos(o.yaw) * p.centre[1]
                for f in (-0.6, 0.0, 0.6):
                    h = p.centre[2] + f * p.half[2]
                    if h <= 0:
                        continue
                    scale = np.sqrt(1 - f * f) if p.kind != 1 else 1.0
                    sx, sy = cx + shift[0] * h, cy + shift[1] * h
                    ax = (max(1, int(p.half[0] * scale / SHADOW_RES * 16)), max(1, int(p.half[1] * scale / SHADOW_RES * 16)))
                    centre = (int((sx - x0) / SHADOW_RES * 16), int((sy - y0) / SHADOW_RES * 16))
                    cv2.ellipse(grid, centre, ax, float(np.degrees(o.yaw + p.yaw)), 0, 360, 230, -1, cv2.LINE_AA, 4)
        grid = cv2.GaussianBlur(grid, (0, 0), 0.8)
        return {"grid": grid.astype(np.float32), "x0": x0, "y0": y0, "res": SHADOW_RES}
