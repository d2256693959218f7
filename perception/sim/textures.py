"""Procedural, tileable textures with mip-map pyramids, sampled by world coordinates with distance blur.

Every terrain class has a colour tile whose mean colour AND texture statistics (contrast, grain size, anisotropy)
differ from the others, so appearance predicts the class at every range: up close by texture, far away by colour.
Objects use grey modulation tiles (mean ~1) multiplied by their own colour.

`TextureBank.sample` picks the mip level per pixel from the pixel's footprint on the surface (the square root of its
area, so the blurred value has the variance of the true area average) and blends two levels (trilinear).
"""
from __future__ import annotations

import cv2
import numpy as np

from perception.sim import config as C
from perception.sim.noise import fractal, sample

TILE = 256
LEVELS = 9  # 256 ... 1


def voronoi(rng: np.random.Generator, n_points: int, size: int = TILE) -> tuple[np.ndarray, np.ndarray, int]:
    """Tileable Voronoi: distance (texels) to the nearest seed, the seed's index, and the number of seeds."""
    pts = rng.integers(0, size, (n_points, 2))
    img = np.ones((3 * size, 3 * size), np.uint8)
    for oy in range(3):
        for ox in range(3):
            img[pts[:, 1] + oy * size, pts[:, 0] + ox * size] = 0
    dist, labels = cv2.distanceTransformWithLabels(img, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    # labels number the zero pixels in scan order; map them back to seed indices
    zy, zx = np.nonzero(img == 0)
    seed_of = np.zeros(zy.size + 1, np.int32)
    lookup = {(int(x) % size, int(y) % size): k for k, (x, y) in enumerate(pts)}
    seed_of[1:] = [lookup[(int(x) % size, int(y) % size)] for y, x in zip(zy, zx)]
    c = slice(size, 2 * size)
    return dist[c, c].astype(np.float32), seed_of[labels[c, c]], n_points


def stretched(rng: np.random.Generator, cells: int, octaves: int, factor: int) -> np.ndarray:
    """Noise elongated `factor` times along the tile's rows (grass blades, bark fibres)."""
    n = fractal(rng, (TILE, TILE // factor), cells, octaves=octaves)
    return cv2.resize(np.pad(n, ((0, 0), (2, 2)), mode="wrap"), (TILE + 4 * factor, TILE), interpolation=cv2.INTER_CUBIC)[
        :, 2 * factor:2 * factor + TILE]


def _colour(base, *mods) -> np.ndarray:
    out = np.ones((TILE, TILE, 3), np.float32) * np.asarray(base, np.float32)
    for m in mods:
        out *= m if m.ndim == 3 else m[..., None]
    return np.clip(out, 0.0, 1.0)


def _tint(noise: np.ndarray, b: float, g: float, r: float) -> np.ndarray:
    """Per-channel multiplicative tint: 1 + noise * (b, g, r)."""
    return 1.0 + noise[..., None] * np.array([b, g, r], np.float32)


def _dirt(rng, base, wet=False):
    low = fractal(rng, (TILE, TILE), 4, octaves=5)
    grain = fractal(rng, (TILE, TILE), 64, octaves=2) + 0.8 * fractal(rng, (TILE, TILE), 128, octaves=1)
    dist, lab, n = voronoi(rng, 700)
    size = rng.uniform(1.0, 3.2, n)[lab]
    shade = rng.uniform(0.7, 1.35, n)[lab]
    pebble = np.where((dist < size) & (rng.random(n)[lab] < 0.45), shade, 1.0)
    return _colour(base, _tint(low, 0.06, 0.08, 0.1), 1 + (0.05 if wet else 0.09) * grain, pebble)


def _grass(rng, base, dry=False):
    blades = fractal(rng, (TILE, TILE), 128, octaves=2)
    clumps = fractal(rng, (TILE, TILE), 8, octaves=4)
    hue = fractal(rng, (TILE, TILE), 4, octaves=3)
    dark = np.where(blades < -1.1, 0.6, 1.0)
    return _colour(base, 1 + 0.28 * blades, 1 + 0.12 * clumps, _tint(hue, -0.05, 0.02, 0.14 if not dry else 0.08), dark)


def _edges(lab: np.ndarray, width: int = 2) -> np.ndarray:
    """Boolean mask of the borders between Voronoi cells (wrapping)."""
    e = (lab != np.roll(lab, 1, 0)) | (lab != np.roll(lab, 1, 1))
    return cv2.dilate(e.astype(np.uint8), np.ones((width, width), np.uint8)) > 0 if width > 1 else e


def _stones(rng, n_points, dome, gap_shade, spread):
    """Packed stones: one random shade per Voronoi cell, domed shading, dark joints."""
    dist, lab, n = voronoi(rng, n_points)
    spacing = np.sqrt(TILE * TILE / n)
    grey = rng.normal(1.0, spread, n)[lab]
    shade = np.clip(1.15 - dome * (dist / spacing) ** 2, 0.3, 1.2)
    joints = np.where(_edges(lab, 2), gap_shade, 1.0)
    tint = rng.normal(0.0, 0.025, (n, 3))[lab]
    return grey * shade * joints, 1.0 + tint


def _gravel(rng, base):
    shade, tint = _stones(rng, 1400, 0.9, 0.4, 0.17)
    return _colour(base, shade, tint)


def _mud(rng, base, dried=False):
    low = fractal(rng, (TILE, TILE), 4, octaves=5)
    wet = fractal(rng, (TILE, TILE), 6, octaves=3)
    fine = fractal(rng, (TILE, TILE), 64, octaves=2)
    if dried:
        dist, lab, n = voronoi(rng, 60)
        cracks = cv2.Laplacian(lab.astype(np.float32), cv2.CV_32F) != 0
        cracks = cv2.dilate(cracks.astype(np.uint8), np.ones((2, 2), np.uint8)) > 0
        return _colour(base, 1 + 0.06 * low, 1 + 0.04 * fine, np.where(cracks, 0.45, 1.0))
    puddle = np.where(wet > 1.0, 0.65, 1.0)
    sheen = np.where((wet > 1.0)[..., None], _tint(wet, 0.25, 0.05, -0.05), 1.0)
    return _colour(base, 1 + 0.1 * low, 1 + 0.03 * fine, puddle, sheen)


def _tall_grass(rng, base):
    blades = fractal(rng, (TILE, TILE), 128, octaves=2)
    tufts = fractal(rng, (TILE, TILE), 32, octaves=2)
    clumps = fractal(rng, (TILE, TILE), 8, octaves=3)
    straw = fractal(rng, (TILE, TILE), 6, octaves=3)
    shadow = np.where(tufts + 0.4 * blades < -1.0, 0.55, 1.0)
    return _colour(base, 1 + 0.32 * blades, 1 + 0.18 * tufts, 1 + 0.15 * clumps, shadow,
                   _tint(straw, -0.06, 0.02, 0.1))


def _rocky(rng, base, mossy=False):
    shade, tint = _stones(rng, 220, 1.1, 0.25, 0.2)
    surface = fractal(rng, (TILE, TILE), 32, octaves=3)
    lichen = fractal(rng, (TILE, TILE), 16, octaves=2)
    moss = _tint(np.clip(lichen - (0.2 if mossy else 0.9), 0, None), -0.3, 0.35 if mossy else 0.1, 0.05)
    return _colour(base, shade, tint, 1 + 0.1 * surface, moss)


# (builder, base BGR, metres per texel, rotation) per terrain class; the alternative look used after a change
TERRAIN_LOOKS = {
    C.PATH: ((_dirt, (0.36, 0.47, 0.57)), (lambda r, b: _dirt(r, b, wet=True), (0.26, 0.33, 0.40)), 0.015),
    C.GRASS: ((_grass, (0.15, 0.38, 0.27)), (lambda r, b: _grass(r, b, dry=True), (0.30, 0.56, 0.66)), 0.010),
    C.GRAVEL: ((_gravel, (0.53, 0.55, 0.56)), (_gravel, (0.27, 0.27, 0.29)), 0.010),
    C.MUD: ((_mud, (0.14, 0.21, 0.29)), (lambda r, b: _mud(r, b, dried=True), (0.42, 0.52, 0.60)), 0.020),
    C.TALL_GRASS: ((_tall_grass, (0.10, 0.33, 0.32)), (_tall_grass, (0.10, 0.30, 0.52)), 0.020),
    C.ROCKS: ((_rocky, (0.38, 0.42, 0.46)), (lambda r, b: _rocky(r, b, mossy=True), (0.25, 0.40, 0.34)), 0.016),
}


def _bark(rng):
    return np.clip(1 + 0.3 * stretched(rng, 16, 3, 8).T, 0.3, 2.0)


def _foliage(rng):
    dist, lab, n = voronoi(rng, 900)
    spacing = np.sqrt(TILE * TILE / n)
    leaf = rng.uniform(0.6, 1.4, n)[lab] * np.clip(1.2 - 0.6 * (dist / spacing) ** 2, 0.4, 1.2)
    holes = np.where(fractal(rng, (TILE, TILE), 16, octaves=3) < -1.0, 0.35, 1.0)
    return leaf * holes * np.where(_edges(lab, 1), 0.7, 1.0)


def _stone(rng):
    dist, lab, n = voronoi(rng, 40)
    cracks = cv2.Laplacian(lab.astype(np.float32), cv2.CV_32F) != 0
    return (1 + 0.18 * fractal(rng, (TILE, TILE), 16, octaves=4)) * np.where(cracks, 0.55, 1.0) * rng.uniform(0.85, 1.15, n)[lab]


def _wall(rng):
    y, x = np.mgrid[0:TILE, 0:TILE]
    row = y // 16
    col = (x + (row % 2) * 16) // 32
    block = rng.uniform(0.8, 1.2, (TILE // 16 + 1, TILE // 32 + 2))[row, col]
    mortar = ((y % 16) < 2) | (((x + (row % 2) * 16) % 32) < 2)
    return block * np.where(mortar, 0.6, 1.0) * (1 + 0.08 * fractal(rng, (TILE, TILE), 32, octaves=3))


def _plain(rng, contrast):
    return 1 + contrast * fractal(rng, (TILE, TILE), 32, octaves=4)


OBJECT_TILES = ("bark", "foliage", "stone", "wall", "cloth", "paint", "skin", "cloud")


class TextureBank:
    """All tiles, their mip pyramids in per-level atlases, and the trilinear sampler."""

    def __init__(self, rng: np.random.Generator):
        tiles, texel = [], []
        self.terrain_tile = {}
        self.terrain_alt_tile = {}
        for cls, ((make, base), (make_alt, base_alt), size) in TERRAIN_LOOKS.items():
            self.terrain_tile[cls] = len(tiles)
            tiles.append(make(rng, base))
            texel.append(size)
            self.terrain_alt_tile[cls] = len(tiles)
            tiles.append(make_alt(rng, base_alt))
            texel.append(size)
        grey = {"bark": (_bark(rng), 0.01), "foliage": (_foliage(rng), 0.02), "stone": (_stone(rng), 0.02),
                "wall": (_wall(rng), 0.015), "cloth": (_plain(rng, 0.08), 0.005), "paint": (_plain(rng, 0.03), 0.01),
                "skin": (_plain(rng, 0.04), 0.004),
                "cloud": (np.clip(0.5 + 0.25 * fractal(rng, (TILE, TILE), 4, octaves=6, gain=0.6), 0, 1), 24.0)}
        self.object_tile = {}
        for name in OBJECT_TILES:
            g, size = grey[name]
            self.object_tile[name] = len(tiles)
            tiles.append(np.repeat(np.asarray(g, np.float32)[..., None], 3, axis=2))
            texel.append(size)
        self.texel = np.array(texel, np.float32)
        self.n = len(tiles)
        self.mean = np.array([t.reshape(-1, 3).mean(axis=0) for t in tiles], np.float32)
        self.atlas = []
        level = [t.astype(np.float32) for t in tiles]
        for _ in range(LEVELS):
            padded = [np.pad(t, ((1, 1), (1, 1), (0, 0)), mode="wrap") for t in level]
            self.atlas.append(np.ascontiguousarray(np.concatenate(padded, axis=1)))
            if level[0].shape[0] > 1:
                level = [cv2.resize(t, (t.shape[1] // 2, t.shape[0] // 2), interpolation=cv2.INTER_AREA) for t in level]

    def sample(self, tile: np.ndarray, u: np.ndarray, v: np.ndarray, footprint: np.ndarray) -> np.ndarray:
        """Colours (N, 3) of tiles at surface coordinates u, v (m), blurred for a pixel footprint (m)."""
        out = np.empty(tile.shape + (3,), np.float32)
        if tile.size == 0:
            return out
        tex = self.texel[tile]
        lev = np.clip(np.log2(np.maximum(footprint / tex, 1e-6)), 0.0, LEVELS - 1.0)
        l0 = np.minimum(lev.astype(np.int8), LEVELS - 2)
        order = np.argsort(l0, kind="stable")  # radix sort on int8
        bounds = np.searchsorted(l0[order], np.arange(LEVELS), side="left")
        inv = (np.float32(1.0) / tex)[order]
        cu, cv = u[order] * inv, v[order] * inv  # level-0 texel coordinates
        frac = (lev[order] - l0[order]).astype(np.float32)[:, None]
        t = tile[order]
        res = np.empty((tile.size, 3), np.float32)
        for L in range(LEVELS - 1):
            a, b = bounds[L], bounds[L + 1] if L + 1 < LEVELS else tile.size
            if b <= a:
                continue
            acc = None
            for k, w_lev in ((L, 1.0 - frac[a:b]), (L + 1, frac[a:b])):
                s = TILE >> k
                scale = np.float32(1.0 / (1 << k))
                x = (cu[a:b] + 0.5) * (scale / s) - 0.5 / s  # in tiles; np.mod is slow, floor is not
                y = (cv[a:b] + 0.5) * (scale / s) - 0.5 / s
                x = (x - np.floor(x)) * s + 1 + t[a:b] * (s + 2)
                y = (y - np.floor(y)) * s + 1
                val = sample(self.atlas[k], x, y, wrap=False)
                acc = val * w_lev if acc is None else acc + val * w_lev
            res[a:b] = acc
        out[order] = res
        return out
