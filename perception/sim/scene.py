"""Placement of static obstacles and actors, and the primitive tables the renderer consumes at a given time."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.sim import config as C
from perception.sim import objects as O
from perception.sim.noise import smoothstep
from perception.sim.path import RoadPath
from perception.sim.terrain import Terrain

TREE_RADIUS = 450.0  # m from the road within which trees stand
N_TREES, N_BUSHES, N_ROCKS = 2200, 500, 450  # per 500 m of road
WALLS_PER_KM = 12
NEAR_PER_100M = (8, 14, 10)  # trees, bushes, rocks within ~12 m of the road's edge


@dataclass
class Prims:
    """Primitive table in world coordinates (one row per primitive)."""

    kind: np.ndarray  # int8
    centre: np.ndarray  # (M, 3) float64
    half: np.ndarray  # (M, 3)
    yaw: np.ndarray  # (M,)
    colour: np.ndarray  # (M, 3) float32
    tex: np.ndarray  # (M,) texture tile index
    obj: np.ndarray  # (M,) object index into Scene.objects

    def take(self, sel: np.ndarray) -> "Prims":
        return Prims(*(getattr(self, k)[sel] for k in ("kind", "centre", "half", "yaw", "colour", "tex", "obj")))

    @staticmethod
    def concat(parts: list["Prims"]) -> "Prims":
        return Prims(*(np.concatenate([getattr(p, k) for p in parts]) for k in
                       ("kind", "centre", "half", "yaw", "colour", "tex", "obj")))


def _to_world(prims: list, index: int, xy, z: float, yaw: float, tex_ids: dict) -> tuple:
    c, s = np.cos(yaw), np.sin(yaw)
    rows = []
    for p in prims:
        lx, ly, lz = p.centre
        rows.append((p.kind, (xy[0] + c * lx - s * ly, xy[1] + s * lx + c * ly, z + lz), p.half, yaw + p.yaw, p.colour,
                     tex_ids[p.tex], index))
    return rows


def _table(rows: list) -> Prims:
    if not rows:
        e = np.zeros((0, 3))
        return Prims(np.zeros(0, np.int8), e, e, np.zeros(0), e.astype(np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    kind, centre, half, yaw, colour, tex, obj = zip(*rows)
    return Prims(np.array(kind, np.int8), np.array(centre, float), np.array(half, float), np.array(yaw, float),
                 np.array(colour, np.float32), np.array(tex, np.int64), np.array(obj, np.int64))


class Scene:
    def __init__(self, rng: np.random.Generator, cfg: C.SimConfig, path: RoadPath, terrain: Terrain, tex_ids: dict,
                 length: float):
        self.cfg, self.path, self.terrain, self.tex_ids, self.length = cfg, path, terrain, tex_ids, length
        per = length / 500.0
        self.objects: list[O.Obj] = []
        hw = cfg.path_width / 2
        if "tree" in cfg.obstacles:
            self._scatter(rng, "tree", int(N_TREES * per * cfg.tree_density), TREE_RADIUS, hw + 3.0,
                          lambda f, cls: 0.015 + 0.985 * smoothstep(0.3, 1.3, f[:, 4]))
        if "bush" in cfg.obstacles:
            self._scatter(rng, "bush", int(N_BUSHES * per), 250.0, hw + 1.5, lambda f, cls: 0.04 + 0.96 * (cls == C.TALL_GRASS))
        if "rock" in cfg.obstacles:
            self._scatter(rng, "rock", int(N_ROCKS * per), 250.0, hw + 1.0, lambda f, cls: 0.02 + 0.98 * (cls == C.ROCKS))
        # and some close to the road, where stereo sees them
        near = {"tree": (NEAR_PER_100M[0], hw + 3.0), "bush": (NEAR_PER_100M[1], hw + 1.5), "rock": (NEAR_PER_100M[2], hw + 1.2)}
        for cls, (count, clearance) in near.items():
            if cls in cfg.obstacles:
                self._scatter(rng, cls, int(count * length / 100.0), clearance + 12.0, clearance, lambda f, c: 1.0)
        if "wall" in cfg.obstacles:
            self._walls(rng, int(round(WALLS_PER_KM * length / 1000.0)))
        self.n_static = len(self.objects)
        rows = []
        for k, o in enumerate(self.objects):
            z = float(terrain.height(np.float32([o.xy[0]]), np.float32([o.xy[1]]))[0])
            o.z = z
            rows += _to_world(o.prims, k, o.xy, z, o.yaw, tex_ids)
        self.static = _table(rows)
        self._actors(rng)
        self.static_xy = np.array([o.xy for o in self.objects[:self.n_static]]).reshape(-1, 2)

    # --- placement ---------------------------------------------------------------------------------------------------
    def _scatter(self, rng, cls: str, target: int, radius: float, clearance: float, accept) -> None:
        x0, y0, x1, y1 = self.path.bounds()
        placed, tries = 0, 0
        while placed < target and tries < 40:
            tries += 1
            n = max(4 * target, 2000)
            xy = rng.uniform([x0 - radius, y0 - radius], [x1 + radius, y1 + radius], (n, 2)).astype(np.float32)
            d = self.terrain.road_distance(xy[:, 0], xy[:, 1])
            f = self.terrain.field_values(xy[:, 0], xy[:, 1])
            cls_here = self.terrain.classify(xy[:, 0], xy[:, 1], 1.0)
            p = accept(f, cls_here) * (d > clearance) * (d < radius) * (cls_here != C.PATH)
            ok = np.nonzero(rng.random(n) < p)[0][: target - placed]
            for x, y in xy[ok]:
                self.objects.append(O.make(rng, len(self.objects), cls, (float(x), float(y)), rng.uniform(0, 2 * np.pi)))
            placed += ok.size

    def _walls(self, rng, count: int) -> None:
        hw = self.cfg.path_width / 2
        length = self.length
        for _ in range(count * 10):
            if sum(o.cls == "wall" for o in self.objects) >= count:
                break
            s = rng.uniform(10.0, length)
            side = rng.choice([-1.0, 1.0])
            (xy, hd) = self.path.offset(s, side * rng.uniform(hw + 4.0, 35.0))
            yaw = hd + (0.0 if rng.random() < 0.6 else np.pi / 2) + rng.normal(0, 0.1)
            obj = O.make(rng, len(self.objects), "wall", xy, yaw)
            half = obj.size[0] / 2
            ends = np.array([xy + half * np.array([np.cos(yaw), np.sin(yaw)]) * k for k in np.linspace(-1, 1, 9)], np.float32)
            if (self.terrain.road_distance(ends[:, 0], ends[:, 1]) > hw + 2.0).all():
                self.objects.append(obj)
            else:
                O.make(rng, 0, "wall", xy, yaw)  # keep the random stream independent of the outcome

    def _actors(self, rng) -> None:
        cfg = self.cfg
        n = int(round(cfg.actor_density * self.length / 100.0))
        if not cfg.actors or n <= 0:
            return
        hw = cfg.path_width / 2
        weights = np.array([{"pedestrian": 0.35, "cyclist": 0.2, "car": 0.3, "truck": 0.15}[a] for a in cfg.actors])
        kinds = list(rng.choice(list(cfg.actors), size=n, p=weights / weights.sum()))
        slots = list(np.sort(rng.uniform(8.0, self.length, n)))
        # and one of each class (two pedestrians) in the first 60 m, so that short drives meet them too
        early = [a for a in cfg.actors] + (["pedestrian"] if "pedestrian" in cfg.actors else [])
        kinds += early
        slots += list(rng.uniform(10.0, 60.0, len(early)))
        for cls, s0 in zip(kinds, slots):
            mode = rng.random()
            if cls == "pedestrian":
                if mode < 0.35:
                    t_cross = max(0.0, (s0 - rng.uniform(10.0, 25.0)) / cfg.speed) if cfg.speed > 0 else 0.0
                    m = {"mode": "cross", "s": s0, "speed": rng.uniform(1.0, 1.5) * rng.choice([-1, 1]), "t0": t_cross}
                elif mode < 0.75:
                    m = {"mode": "along", "s": s0, "lateral": rng.choice([-1, 1]) * (hw + rng.uniform(0.6, 2.5)),
                         "speed": rng.choice([-1, 1]) * rng.uniform(0.9, 1.5)}
                else:
                    m = {"mode": "along", "s": s0, "lateral": rng.choice([-1, 1]) * (hw + rng.uniform(0.8, 6.0)), "speed": 0.0}
            elif cls == "cyclist":
                m = ({"mode": "along", "s": s0, "lateral": 1.1, "speed": -rng.uniform(3.0, 5.0)} if mode < 0.5 else
                     {"mode": "along", "s": s0 + 10, "lateral": -1.3, "speed": cfg.speed + rng.uniform(2.0, 4.0)})
            elif cls == "car":
                m = ({"mode": "along", "s": s0, "lateral": rng.choice([-1, 1]) * (hw + 1.4), "speed": 0.0} if mode < 0.5 else
                     {"mode": "along", "s": s0 + 40, "lateral": 1.1, "speed": -rng.uniform(4.0, 8.0)})
            else:
                m = ({"mode": "along", "s": s0 + 5, "lateral": rng.choice([-1, 1]) * (hw + 2.2), "speed": 0.0} if mode < 0.6 else
                     {"mode": "along", "s": s0 + 60, "lateral": 1.3, "speed": -rng.uniform(3.0, 5.0)})
            m["flip"] = bool(rng.random() < 0.5) if m["speed"] == 0.0 else False
            self.objects.append(O.make(rng, len(self.objects), str(cls), (0.0, 0.0), 0.0, m))

    # --- state at a time ---------------------------------------------------------------------------------------------
    def actor_pose(self, obj: O.Obj, time: float) -> tuple[np.ndarray, float, float]:
        """(xy, yaw, distance travelled) of an actor at `time` seconds."""
        m = obj.motion
        if m["mode"] == "cross":
            xy0, hd = self.path.at(m["s"])
            normal = np.array([-np.sin(hd), np.cos(hd)])
            lateral = m["speed"] * (time - m["t0"])
            yaw = hd + (np.pi / 2 if m["speed"] > 0 else -np.pi / 2)
            return xy0 + normal * lateral, float(yaw), abs(lateral)
        s = m["s"] + m["speed"] * time
        xy, hd = self.path.offset(s, m["lateral"])
        yaw = hd + (np.pi if (m["speed"] < 0 or m.get("flip")) else 0.0)
        return np.asarray(xy), float(yaw), abs(m["speed"] * time)

    def actor_states(self, time: float, dt: float = 0.05) -> list[dict]:
        """Position (ground point), yaw and velocity of every actor at `time`."""
        out = []
        for k in range(self.n_static, len(self.objects)):
            o = self.objects[k]
            xy, yaw, trav = self.actor_pose(o, time)
            xy2, _, _ = self.actor_pose(o, time + dt)
            z, z2 = self.terrain.height(np.float32([xy[0], xy2[0]]), np.float32([xy[1], xy2[1]])).astype(float)
            out.append({"index": k, "xy": xy, "z": z, "yaw": yaw, "travelled": trav,
                        "velocity": np.array([(xy2[0] - xy[0]) / dt, (xy2[1] - xy[1]) / dt, (z2 - z) / dt])})
        return out

    def prims_at(self, time: float) -> tuple[Prims, list[dict]]:
        """All primitives (static + actors at `time`) and the actor states."""
        states = self.actor_states(time)
        rows = []
        for st in states:
            o = self.objects[st["index"]]
            rows += _to_world(O.animated_prims(o, st["travelled"]), st["index"], st["xy"], st["z"], st["yaw"], self.tex_ids)
        return Prims.concat([self.static, _table(rows)]), states
