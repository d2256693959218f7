"""Terrain pre-processing before the feature net: BGR -> YUV, local contrast normalisation of Y, band strips.

This follows the LAGR system (REFERENCE.md section 1; Hadsell et al., JFR 2009): RGB -> YUV, local contrast
normalisation (LCN) of Y with a smooth 16x16 kernel, then distance-normalised bands 3@36xW cut from the image. LCN
runs here, on the whole (scaled) frame, BEFORE the network; the feature net itself sees normalised values only:

    x = yuv_uint8 * (1/255)             # Y, U, V in [0, 1]
    x[Y] = lcn(x[Y])                    # zero local mean, unit local contrast (Jarrett et al. 2009 divisor)
    x = (x - MEAN) / STD                # MEAN = (0, 0.5, 0.5), STD = (1, UV_STD, UV_STD): identity on Y

MEAN / STD are what the model metadata carries as its input `normalization` (scale 1/255), with the LCN step named
in `decoder["preprocess"]`.
"""
from __future__ import annotations

import cv2
import numpy as np

LCN_KERNEL = 16  # taps of the Gaussian window (the paper's "smooth 16x16 kernel")
LCN_SIGMA = LCN_KERNEL / 4.0
LCN_EPS = 1e-2  # floor of the contrast divisor, in [0, 1] intensity units (flat frames stay finite)
UV_STD = 0.05  # spread of U and V around 0.5 in natural images: makes them about as large as LCN'd Y
MEAN = (0.0, 0.5, 0.5)
STD = (1.0, UV_STD, UV_STD)
SCALE = 1.0 / 255.0


def _smooth(x: np.ndarray, kernel: int) -> np.ndarray:
    g = cv2.getGaussianKernel(kernel, kernel / 4.0).astype(np.float32)
    return cv2.sepFilter2D(x, cv2.CV_32F, g, g, borderType=cv2.BORDER_REFLECT_101)


def lcn(y: np.ndarray, kernel: int = LCN_KERNEL, eps: float = LCN_EPS) -> np.ndarray:
    """Local contrast normalisation of one channel (float, HxW): subtract the Gaussian-weighted local mean, divide
    by the local standard deviation, floored at its mean over the frame (and at `eps`) so flat areas are not blown up.
    """
    y = np.asarray(y, dtype=np.float32)
    centred = y - _smooth(y, kernel)
    sigma = np.sqrt(np.maximum(_smooth(centred * centred, kernel), 0.0))
    floor = max(float(sigma.mean()), eps)
    return (centred / np.maximum(sigma, floor)).astype(np.float32)


def yuv_normalized(bgr: np.ndarray, kernel: int = LCN_KERNEL) -> np.ndarray:
    """A BGR uint8 frame (HxWx3, or HxW gray) -> float32 HxWx3 YUV with LCN'd Y and normalised U, V."""
    if bgr.ndim == 2:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError(f"expected a BGR image HxWx3, got shape {bgr.shape}")
    if bgr.dtype != np.uint8:
        bgr = np.clip(bgr, 0, 255).astype(np.uint8)
    x = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV).astype(np.float32) * SCALE
    x[..., 0] = lcn(x[..., 0], kernel)
    return ((x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)).astype(np.float32)


def to_nchw(x: np.ndarray) -> np.ndarray:
    """HxWxC float -> contiguous 1xCxHxW float32."""
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def band_strips(bgr: np.ndarray, height: int = 36, width: int = 484, count: int = 2) -> list[np.ndarray]:
    """Band-shaped network inputs (1x3xHxW float32) from one frame, for calibration and evaluation.

    The frame is scaled (keeping its aspect ratio) to `width` columns, normalised (YUV, LCN) as a whole, and
    `count` strips of `height` rows are cut at evenly spaced rows between 40% and 90% of the frame height, where the
    ground and the horizon of a forward-looking camera are. A real band pyramid cuts its strips at distances from
    the ground plane (issue 5); the statistics the quantizer sees are the same.
    """
    h, w = bgr.shape[:2]
    new_h = max(height, int(round(h * width / w)))
    scaled = cv2.resize(bgr, (width, new_h), interpolation=cv2.INTER_AREA if width < w else cv2.INTER_LINEAR)
    x = yuv_normalized(scaled)
    centres = np.linspace(0.4, 0.9, count) if count > 1 else np.array([0.65])
    strips = []
    for c in centres:
        top = int(np.clip(round(c * new_h - height / 2), 0, new_h - height))
        strips.append(to_nchw(x[top : top + height]))
    return strips
