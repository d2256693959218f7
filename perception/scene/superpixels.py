"""Superpixel majority vote (Farabet et al. 2013, "multiscale convnet + superpixels"): every superpixel of the
image takes the class most of its pixels were given. Superpixels are Felzenszwalb & Huttenlocher's graph-based
segmentation (the one the paper used), from scikit-image (`pip install scikit-image`; part of the `test` extra).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.errors import EngineError
from perception.params import param, validate_config


@dataclass(frozen=True)
class SuperpixelConfig:
    scale: float = param(100.0, "Felzenszwalb-Huttenlocher scale (larger: bigger segments)", 1.0, 10000.0)
    sigma: float = param(0.5, "Gaussian smoothing before segmenting (px)", 0.0, 10.0)
    min_size: int = param(40, "smallest segment (px)", 1, 100000)

    def __post_init__(self) -> None:
        validate_config(self)


def segments(bgr: np.ndarray, cfg: SuperpixelConfig = SuperpixelConfig()) -> np.ndarray:
    """HxW int32 segment ids 0..S-1."""
    try:
        from skimage.segmentation import felzenszwalb
    except ImportError as err:
        raise EngineError("superpixels need scikit-image", subject="scene superpixels",
                          hint="pip install scikit-image, or parse without superpixels") from err
    return felzenszwalb(bgr[:, :, ::-1], scale=cfg.scale, sigma=cfg.sigma, min_size=cfg.min_size).astype(np.int32)


def majority_vote(class_mask: np.ndarray, segs: np.ndarray, num_classes: int) -> np.ndarray:
    """Each segment gets its most frequent class (ties: the lower class index)."""
    n = int(segs.max()) + 1
    counts = np.bincount((segs.ravel().astype(np.int64) * num_classes + class_mask.ravel()),
                         minlength=n * num_classes).reshape(n, num_classes)
    return counts.argmax(1).astype(np.uint8)[segs]
