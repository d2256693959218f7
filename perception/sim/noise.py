"""Seeded procedural noise and fast bilinear sampling of grids at arbitrary (float) coordinates.

All generators take a numpy Generator, so a world is a pure function of its seed.
"""
from __future__ import annotations

import cv2
import numpy as np

_COLS = 1024  # cv2.remap wants images and maps below 32767 on each side; long point lists are folded to this width


def _lattice_upsample(lattice: np.ndarray, shape: tuple[int, int], periodic: bool) -> np.ndarray:
    """Smooth (bicubic) interpolation of a random lattice onto `shape`; periodic lattices give tileable output."""
    ly, lx = lattice.shape
    sy, sx = shape[0] / ly, shape[1] / lx
    pad = 3
    mode = "wrap" if periodic else "reflect"
    padded = np.pad(lattice, pad, mode=mode).astype(np.float32)
    big = cv2.resize(padded, (int(round((lx + 2 * pad) * sx)), int(round((ly + 2 * pad) * sy))), interpolation=cv2.INTER_CUBIC)
    oy, ox = int(round(pad * sy)), int(round(pad * sx))
    return big[oy:oy + shape[0], ox:ox + shape[1]]


def fractal(rng: np.random.Generator, shape: tuple[int, int], cells: int, octaves: int = 4, gain: float = 0.5,
            periodic: bool = True) -> np.ndarray:
    """Fractal value noise, float32, zero mean and unit standard deviation.

    `cells` is the number of lattice cells of the first octave along the longer side; each octave doubles it.
    For periodic noise every lattice size must divide the shape (use powers of two).
    """
    out = np.zeros(shape, np.float32)
    amp = 1.0
    for k in range(octaves):
        c = cells * 2**k
        cy = max(1, int(round(c * shape[0] / max(shape))))
        cx = max(1, int(round(c * shape[1] / max(shape))))
        if c > max(shape) // 2:
            break
        out += amp * _lattice_upsample(rng.standard_normal((cy, cx)), shape, periodic)
        amp *= gain
    out -= out.mean()
    std = out.std()
    return out / std if std > 0 else out


def sample(img: np.ndarray, x: np.ndarray, y: np.ndarray, *, wrap: bool, nearest: bool = False) -> np.ndarray:
    """Bilinear samples of `img` (HxW or HxWxC float32) at pixel coordinates x, y (any equal shapes).

    wrap=True tiles the image; otherwise coordinates are clamped to the border. Returns shape x.shape (+ (C,)).
    Uses cv2.remap (weights quantised to 1/32 of a texel, which is far below what any pixel resolves).
    """
    shape = x.shape
    n = x.size
    if n == 0:
        return np.zeros(shape + img.shape[2:], np.float32)
    mx = np.asarray(x, np.float32).reshape(-1)
    my = np.asarray(y, np.float32).reshape(-1)
    if n < 32000:  # one row
        rows, cols = 1, n
    elif n % _COLS == 0:
        rows, cols = n // _COLS, _COLS
    else:
        rows, cols = -(-n // _COLS), _COLS
        pad = rows * _COLS - n
        mx = np.concatenate([mx, np.zeros(pad, np.float32)])
        my = np.concatenate([my, np.zeros(pad, np.float32)])
    out = cv2.remap(img, mx.reshape(rows, cols), my.reshape(rows, cols),
                    cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_WRAP if wrap else cv2.BORDER_REPLICATE)
    out = out.reshape((rows * cols,) + img.shape[2:])[:n]
    return out.reshape(shape + img.shape[2:])


def bilinear_exact(grid: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Exact (float) bilinear interpolation of a 2D grid at pixel coordinates, clamped to the border."""
    h, w = grid.shape
    x = np.clip(x, 0.0, w - 1.001)
    y = np.clip(y, 0.0, h - 1.001)
    x0 = x.astype(np.int32)
    y0 = y.astype(np.int32)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    flat = grid.ravel()
    i = y0 * w + x0
    a = flat.take(i)
    b = flat.take(i + 1)
    c = flat.take(i + w)
    d = flat.take(i + w + 1)
    top = a + (b - a) * fx
    bot = c + (d - c) * fx
    return top + (bot - top) * fy


def rotate(points: np.ndarray, R: np.ndarray) -> np.ndarray:
    """points @ R.T for (..., 3) arrays, without BLAS: OpenBLAS threads stall badly when other processes keep
    the cores busy (50 ms instead of 1 ms for a 640x480 ray grid), cv2.transform does not."""
    pts = np.ascontiguousarray(points)
    dtype = np.float32 if pts.dtype == np.float32 else np.float64
    out = cv2.transform(pts.reshape(-1, 1, 3).astype(dtype, copy=False), np.asarray(R, dtype))
    return out.reshape(points.shape)


def dot3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product of (N, 3) arrays (several times faster than einsum / linalg.norm for this shape)."""
    return a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1] + a[:, 2] * b[:, 2]


def norm3(a: np.ndarray) -> np.ndarray:
    return np.sqrt(dot3(a, a))


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
