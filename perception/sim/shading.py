"""Appearance: ground albedo from class textures, sky and clouds, sun/sky lighting with shadows, aerial haze, and
the camera (exposure, optics blur, vignetting, sensor noise)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from perception.sim import config as C
from perception.sim.noise import dot3, norm3, sample, smoothstep

CLOUD_ALTITUDE = 1200.0  # m
CLOUD_TEXEL = 24.0  # m per cloud texel (6 km tile)
VISIBILITY = 900.0  # m, e-folding distance of the haze
HORIZON = np.array([0.88, 0.82, 0.76], np.float32)  # BGR
ZENITH = np.array([0.78, 0.50, 0.26], np.float32)
CLOUD = np.array([0.95, 0.95, 0.96], np.float32)
AMBIENT = np.array([0.50, 0.47, 0.44], np.float32)  # sky light, slightly blue
SUN = np.array([0.90, 0.97, 1.0], np.float32)  # warm sun
TEX_ROT = {c: a for c, a in zip(range(6), (0.3, 1.1, 2.0, 0.7, 2.6, 1.6))}


@dataclass
class Lighting:
    sun_dir: np.ndarray  # unit vector towards the sun (world)
    sun: float  # strength multiplier (passing clouds)
    exposure: float
    wind: np.ndarray  # cloud drift, m/s
    time: float
    coverage: float  # cloud coverage 0..1


def cloud_density(bank, x: np.ndarray, y: np.ndarray, footprint: np.ndarray, light: Lighting) -> np.ndarray:
    """Cloud density 0..1 at points of the cloud plane."""
    tile = np.full(x.shape, bank.object_tile["cloud"], np.int64)
    xs = x + light.wind[0] * light.time
    ys = y + light.wind[1] * light.time
    n = bank.sample(tile, xs, ys, footprint)[..., 0]
    return smoothstep(1.0 - light.coverage, 1.0 - light.coverage + 0.45, n)


def sky_image(bank, rays: np.ndarray, o: np.ndarray, fxfy: float, light: Lighting, step: int = 4) -> np.ndarray:
    """Sky colour for every pixel of an HxWx3 ray grid, computed on every `step`-th pixel and interpolated (the sky
    is smooth, and its disparity is zero in both views)."""
    h, w, _ = rays.shape
    ys = np.r_[np.arange(0, h - 1, step), h - 1]
    xs = np.r_[np.arange(0, w - 1, step), w - 1]
    small = rays[ys][:, xs].reshape(-1, 3)
    col = sky_colour(bank, small, o, fxfy / step**2, light).reshape(len(ys), len(xs), 3)
    fy = np.interp(np.arange(h), ys, np.arange(len(ys))).astype(np.float32)
    fx = np.interp(np.arange(w), xs, np.arange(len(xs))).astype(np.float32)
    mx, my = np.meshgrid(fx, fy)
    return cv2.remap(col, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def sky_colour(bank, d: np.ndarray, o: np.ndarray, fxfy: float, light: Lighting) -> np.ndarray:
    """Sky colour (N, 3) for world ray directions d (z-component of the optical ray = 1 parametrisation)."""
    dn = d / norm3(d)[:, None]
    elev = np.arcsin(np.clip(dn[:, 2], -1, 1))
    k = smoothstep(0.0, 0.6, elev)[:, None] ** 0.6
    col = HORIZON * (1 - k) + ZENITH * k
    glow = np.clip(dot3(dn, np.broadcast_to(light.sun_dir.astype(np.float32), dn.shape)), 0, 1)
    col = col + (0.5 * glow**40 + 0.12 * glow**4)[:, None] * np.array([0.5, 0.75, 0.9], np.float32)
    up = dn[:, 2] > 0.015
    if up.any():
        t = (CLOUD_ALTITUDE - o[2]) / d[up, 2]
        px, py = o[0] + t * d[up, 0], o[1] + t * d[up, 1]
        foot = t / np.sqrt(fxfy * np.abs(d[up, 2]))
        dens = cloud_density(bank, px, py, foot, light) * smoothstep(0.015, 0.12, dn[up, 2])
        lit = 0.75 + 0.25 * glow[up]
        col[up] = col[up] * (1 - dens[:, None]) + (CLOUD * lit[:, None]) * dens[:, None]
    return col.astype(np.float32)


def ground_albedo(world, x, y, cls, footprint, appearance_changed: bool) -> np.ndarray:
    """Texture colour (N, 3) of ground points of known class."""
    bank = world.bank
    lut = np.zeros(256, np.int64)
    for c, k in bank.terrain_tile.items():
        lut[c] = k
    if appearance_changed:
        lut[world.cfg.change_class] = bank.terrain_alt_tile[world.cfg.change_class]
    ang = np.zeros(256, np.float32)
    ang[:len(TEX_ROT)] = list(TEX_ROT.values())
    ca, sa = np.cos(ang)[cls], np.sin(ang)[cls]
    col = bank.sample(lut[cls], ca * x - sa * y, sa * x + ca * y, footprint)
    col *= (1.0 + 0.12 * world.terrain.macro(x, y))[:, None]
    road = np.nonzero(cls == C.PATH)[0]
    if road.size:  # wheel ruts: two darker bands
        d = world.terrain.road_distance(x[road], y[road])
        rut = np.exp(-(((d - 0.85) / 0.28) ** 2))
        col[road] *= (1.0 - 0.22 * rut)[:, None]
    return col


def lighting(albedo, normal, shadow, light: Lighting) -> np.ndarray:
    L = light.sun_dir.astype(np.float32)
    ndotl = np.clip(normal[:, 0] * L[0] + normal[:, 1] * L[1] + normal[:, 2] * L[2], 0.0, 1.0)
    sky = 0.75 + 0.25 * normal[:, 2]
    direct = (light.sun * ndotl * shadow)[:, None] * SUN
    return albedo * (AMBIENT * sky[:, None] + direct)


def ground_shadow(world, x, y, z, light: Lighting) -> np.ndarray:
    """1 in sun, down to ~0.1 under trees / clouds (static object shadow map x cloud shadow)."""
    sm = world.shadow_map
    s = sample(sm["grid"], (x - sm["x0"]) / sm["res"], (y - sm["y0"]) / sm["res"], wrap=False) * np.float32(1 / 255)
    t = (CLOUD_ALTITUDE - z) / light.sun_dir[2]
    cs = world.cloud_shadow
    cx = (x + t * light.sun_dir[0] + light.wind[0] * light.time) / cs["texel"]
    cy = (y + t * light.sun_dir[1] + light.wind[1] * light.time) / cs["texel"]
    n = sample(cs["grid"], cx, cy, wrap=True)
    dens = smoothstep(1.0 - light.coverage, 1.0 - light.coverage + 0.45, n)
    return (1.0 - 0.9 * s) * (1.0 - 0.7 * dens)


def haze(colour, rng_m, light: Lighting) -> np.ndarray:
    T = np.exp(-rng_m / VISIBILITY)[:, None]
    return colour * T + HORIZON * 0.95 * (1 - T)


_VIGNETTE: dict = {}
_NOISE = np.random.default_rng(12345).standard_normal(1 << 22, dtype=np.float32)  # slices of it are the sensor noise


def camera_image(linear: np.ndarray, light: Lighting, noise_sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Scene radiance (HxWx3, ~0..1) -> 8-bit BGR: exposure, soft shoulder, lens blur, vignetting, sensor noise."""
    h, w, _ = linear.shape
    if (h, w) not in _VIGNETTE:
        yy, xx = np.ogrid[0:h, 0:w]
        r2 = ((xx - (w - 1) / 2) ** 2 + (yy - (h - 1) / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
        _VIGNETTE[(h, w)] = ((1.0 - 0.18 * r2) * 255.0)[..., None].astype(np.float32)
    x = linear * np.float32(light.exposure * 0.95)
    over = np.maximum(x - np.float32(0.8), 0)
    x -= over * over / (over + np.float32(0.2))  # soft shoulder above 0.8, saturating at 1
    x = cv2.GaussianBlur(x, (0, 0), 0.5)
    x *= _VIGNETTE[(h, w)]
    n = x.size
    if n <= _NOISE.size // 2:
        start = int(rng.integers(0, _NOISE.size - n))
        noise = _NOISE[start:start + n].reshape(x.shape)
    else:
        noise = rng.standard_normal(x.shape, dtype=np.float32)
    x += noise * np.float32(noise_sigma) + np.float32(0.5)
    return np.clip(x, 0, 255).astype(np.uint8)
