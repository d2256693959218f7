"""3D objects: class-typical shapes built from ellipsoids, boxes and vertical cylinders, placed in the world.

Each object has a local frame (x forward, y left, z up, origin on the ground under its centre) and a list of
primitives in it. Static obstacles (trees, rocks, walls, bushes) are placed once from the seed; actors
(pedestrians, cyclists, cars, trucks) move along or across the road with closed-form trajectories.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perception.sim import config as C

ELLIPSOID, BOX, CYLINDER = 0, 1, 2


@dataclass
class Prim:
    kind: int
    centre: tuple  # local (x, y, z)
    half: tuple  # ellipsoid radii / box half extents / cylinder (r, r, half height)
    colour: tuple  # BGR 0..1
    tex: str
    yaw: float = 0.0


@dataclass
class Obj:
    id: int
    cls: str
    size: tuple  # (length, width, height) of its 3D box, m
    prims: list
    xy: np.ndarray = field(default_factory=lambda: np.zeros(2))
    yaw: float = 0.0
    motion: dict | None = None  # None = static
    z: float = 0.0  # ground height under a static object

    @property
    def dynamic(self) -> bool:
        return self.motion is not None and self.motion.get("speed", 0.0) != 0.0


def _jitter(rng, colour, amount=0.08):
    return tuple(min(1.0, max(0.0, float(c) * (1.0 + amount * float(z)))) for c, z in zip(colour, rng.standard_normal(3)))


# --- models ----------------------------------------------------------------------------------------------------------
def tree(rng) -> tuple[tuple, list]:
    conifer = rng.random() < 0.35
    trunk_h = rng.uniform(1.2, 3.0)
    r = rng.uniform(0.12, 0.3)
    bark = _jitter(rng, (0.16, 0.21, 0.27), 0.15)
    if conifer:
        rx, rz = rng.uniform(0.9, 1.6), rng.uniform(3.0, 5.5)
        leaf = _jitter(rng, (0.10, 0.24, 0.12), 0.15)
    else:
        rx, rz = rng.uniform(1.3, 3.0), rng.uniform(1.4, 3.2)
        leaf = _jitter(rng, (0.10, 0.33, 0.20), 0.2)
    ry = rx * rng.uniform(0.85, 1.15)
    cz = trunk_h + rz * 0.75
    prims = [Prim(CYLINDER, (0, 0, (cz - 0.6) / 2), (r, r, (cz + 0.6) / 2), bark, "bark"),
             Prim(ELLIPSOID, (0, 0, cz), (rx, ry, rz), leaf, "foliage")]
    if conifer:  # a narrower top
        prims.append(Prim(ELLIPSOID, (0, 0, cz + 0.7 * rz), (0.55 * rx, 0.55 * ry, 0.6 * rz), _jitter(rng, leaf, 0.08),
                          "foliage"))
    else:  # lobes make the crown irregular
        for _ in range(int(rng.integers(2, 5))):
            a, k = rng.uniform(0, 2 * np.pi), rng.uniform(0.45, 0.7)
            prims.append(Prim(ELLIPSOID, (0.55 * rx * np.cos(a), 0.55 * ry * np.sin(a), cz + rng.uniform(-0.3, 0.4) * rz),
                              (k * rx, k * ry, k * rz), _jitter(rng, leaf, 0.12), "foliage"))
    return (2 * rx * 1.2, 2 * ry * 1.2, cz + rz * 1.1), prims


def bush(rng):
    rx, ry, rz = rng.uniform(0.4, 1.1), rng.uniform(0.4, 1.1), rng.uniform(0.35, 0.8)
    c = _jitter(rng, (0.10, 0.30, 0.22), 0.2)
    prims = [Prim(ELLIPSOID, (0, 0, rz * 0.7), (rx, ry, rz), c, "foliage")]
    return (2 * rx, 2 * ry, rz * 1.7), prims


def rock(rng):
    rx, ry, rz = rng.uniform(0.25, 1.1), rng.uniform(0.25, 1.0), rng.uniform(0.2, 0.7)
    c = _jitter(rng, (0.30, 0.36, 0.42), 0.12)
    return (2 * rx, 2 * ry, rz * 1.4), [Prim(ELLIPSOID, (0, 0, rz * 0.4), (rx, ry, rz), c, "stone")]


def wall(rng):
    length, thick, height = rng.uniform(6.0, 25.0), rng.uniform(0.3, 0.5), rng.uniform(1.2, 2.6)
    c = _jitter(rng, (0.50, 0.55, 0.60) if rng.random() < 0.6 else (0.30, 0.36, 0.55), 0.1)
    return (length, thick, height), [Prim(BOX, (0, 0, height / 2 - 0.6), (length / 2, thick / 2, height / 2 + 0.6), c, "wall")]


CLOTHES = ((0.55, 0.25, 0.15), (0.15, 0.15, 0.6), (0.2, 0.5, 0.2), (0.7, 0.7, 0.7), (0.1, 0.1, 0.1), (0.1, 0.6, 0.85),
           (0.5, 0.3, 0.5), (0.2, 0.2, 0.35))
SKIN = ((0.45, 0.6, 0.8), (0.3, 0.42, 0.6), (0.2, 0.28, 0.4))
PAINT = ((0.8, 0.8, 0.8), (0.1, 0.1, 0.1), (0.6, 0.1, 0.1), (0.1, 0.1, 0.6), (0.5, 0.5, 0.5), (0.1, 0.4, 0.1),
         (0.75, 0.65, 0.5), (0.2, 0.6, 0.8))


def pedestrian(rng, phase=0.0):
    shirt, pants = CLOTHES[rng.integers(len(CLOTHES))], CLOTHES[rng.integers(len(CLOTHES))]
    skin = SKIN[rng.integers(len(SKIN))]
    h = rng.uniform(1.62, 1.88)
    s = h / 1.75
    swing = 0.16 * np.sin(phase)
    prims = [Prim(BOX, (swing, 0.1, 0.43 * s), (0.08, 0.07, 0.43 * s), pants, "cloth"),
             Prim(BOX, (-swing, -0.1, 0.43 * s), (0.08, 0.07, 0.43 * s), pants, "cloth"),
             Prim(ELLIPSOID, (0, 0, 1.17 * s), (0.14, 0.22, 0.33 * s), shirt, "cloth"),
             Prim(BOX, (-swing * 0.7, 0.27, 1.13 * s), (0.05, 0.05, 0.3 * s), shirt, "cloth"),
             Prim(BOX, (swing * 0.7, -0.27, 1.13 * s), (0.05, 0.05, 0.3 * s), shirt, "cloth"),
             Prim(ELLIPSOID, (0, 0, 1.63 * s), (0.1, 0.09, 0.12 * s), skin, "skin")]
    return (0.5, 0.5, h), prims


def cyclist(rng, phase=0.0):
    shirt, frame = CLOTHES[rng.integers(len(CLOTHES))], PAINT[rng.integers(len(PAINT))]
    skin = SKIN[rng.integers(len(SKIN))]
    tyre = (0.08, 0.08, 0.08)
    pedal = 0.12 * np.sin(phase)
    prims = [Prim(ELLIPSOID, (0.55, 0, 0.34), (0.34, 0.03, 0.34), tyre, "paint"),
             Prim(ELLIPSOID, (-0.55, 0, 0.34), (0.34, 0.03, 0.34), tyre, "paint"),
             Prim(BOX, (0, 0, 0.6), (0.5, 0.025, 0.04), frame, "paint"),
             Prim(BOX, (0.45, 0, 0.85), (0.03, 0.25, 0.03), frame, "paint"),
             Prim(BOX, (-0.18, 0.11, 0.65 + pedal), (0.07, 0.06, 0.3), CLOTHES[4], "cloth"),
             Prim(BOX, (-0.18, -0.11, 0.65 - pedal), (0.07, 0.06, 0.3), CLOTHES[4], "cloth"),
             Prim(ELLIPSOID, (-0.05, 0, 1.2), (0.28, 0.18, 0.3), shirt, "cloth"),
             Prim(BOX, (0.22, 0.2, 1.05), (0.22, 0.04, 0.04), shirt, "cloth"),
             Prim(BOX, (0.22, -0.2, 1.05), (0.22, 0.04, 0.04), shirt, "cloth"),
             Prim(ELLIPSOID, (0.15, 0, 1.57), (0.12, 0.1, 0.12), skin, "skin")]
    return (1.8, 0.6, 1.7), prims


def car(rng):
    paint = _jitter(rng, PAINT[rng.integers(len(PAINT))], 0.05)
    glass = (0.32, 0.26, 0.2)
    tyre = (0.06, 0.06, 0.06)
    prims = [Prim(BOX, (0, 0, 0.75), (2.25, 0.9, 0.3), paint, "paint"),
             Prim(BOX, (0, 0, 0.38), (2.2, 0.86, 0.08), (0.08, 0.08, 0.08), "paint"),
             Prim(BOX, (-0.25, 0, 1.27), (1.15, 0.74, 0.22), glass, "paint"),
             Prim(BOX, (-0.25, 0, 1.47), (1.0, 0.7, 0.03), paint, "paint"),
             Prim(BOX, (2.24, 0.62, 0.8), (0.02, 0.15, 0.06), (0.9, 0.9, 0.9), "paint"),
             Prim(BOX, (2.24, -0.62, 0.8), (0.02, 0.15, 0.06), (0.9, 0.9, 0.9), "paint"),
             Prim(BOX, (-2.24, 0.65, 0.85), (0.02, 0.12, 0.06), (0.1, 0.1, 0.75), "paint"),
             Prim(BOX, (-2.24, -0.65, 0.85), (0.02, 0.12, 0.06), (0.1, 0.1, 0.75), "paint")]
    for x in (1.4, -1.4):
        for y in (0.8, -0.8):
            prims.append(Prim(ELLIPSOID, (x, y, 0.33), (0.33, 0.11, 0.33), tyre, "paint"))
    return (4.5, 1.8, 1.5), prims


def truck(rng):
    cab = _jitter(rng, PAINT[rng.integers(len(PAINT))], 0.05)
    cargo = _jitter(rng, (0.75, 0.75, 0.75) if rng.random() < 0.5 else (0.25, 0.35, 0.55), 0.1)
    tyre = (0.06, 0.06, 0.06)
    prims = [Prim(BOX, (2.95, 0, 1.8), (1.05, 1.2, 1.3), cab, "paint"),
             Prim(BOX, (4.0, 0, 2.3), (0.02, 1.0, 0.5), (0.12, 0.1, 0.08), "paint"),
             Prim(BOX, (-1.1, 0, 1.95), (2.9, 1.25, 1.25), cargo, "paint"),
             Prim(BOX, (0.3, 0, 0.6), (3.6, 1.0, 0.15), tyre, "paint")]
    for x in (2.9, -0.6, -2.8):
        for y in (1.0, -1.0):
            prims.append(Prim(ELLIPSOID, (x, y, 0.5), (0.5, 0.2, 0.5), tyre, "paint"))
    return (8.0, 2.5, 3.2), prims


MODELS = {"tree": tree, "bush": bush, "rock": rock, "wall": wall, "pedestrian": pedestrian, "cyclist": cyclist,
          "car": car, "truck": truck}


def make(rng, oid: int, cls: str, xy, yaw: float, motion: dict | None = None) -> Obj:
    if cls in ("pedestrian", "cyclist"):  # articulated: rebuilt every frame from its own seed
        seed = int(rng.integers(2**31))
        size, prims = MODELS[cls](np.random.default_rng(seed))
        motion = dict(motion or {"mode": "static", "speed": 0.0}, model_seed=seed)
    else:
        size, prims = MODELS[cls](rng)
    return Obj(oid, cls, size, prims, np.asarray(xy, float), float(yaw), motion)


def animated_prims(obj: Obj, travelled: float) -> list:
    """Primitives of an articulated actor after travelling `travelled` metres (legs swing, pedals turn)."""
    if obj.cls == "pedestrian":
        return pedestrian(np.random.default_rng(obj.motion["model_seed"]), phase=travelled / 0.75 * np.pi)[1]
    if obj.cls == "cyclist":
        return cyclist(np.random.default_rng(obj.motion["model_seed"]), phase=travelled / 1.2 * np.pi)[1]
    return obj.prims


def object_semantic(cls: str) -> int:
    return C.OBJECT_SEMANTIC[cls]
