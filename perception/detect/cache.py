"""On-disk cache of rendered synthetic training samples (rendering is ~0.3 s a frame; training reads them many times).

One `sim_seed{S}_{W}x{H}.npz` per drive: images (N x H x W x 3 uint8), and per frame boxes, classes, ignore boxes
(concatenated, with offsets). Building a cache is resumable: drives already on disk are kept.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from perception.detect.data import Sample, sim_samples


def _pack(samples: list[Sample]) -> dict[str, np.ndarray]:
    def cat(key):
        arrays = [getattr(s, key) for s in samples]
        offsets = np.cumsum([0] + [len(a) for a in arrays]).astype(np.int64)
        return (np.concatenate(arrays) if arrays else np.zeros((0,))), offsets

    boxes, box_off = cat("boxes")
    classes, _ = cat("classes")
    ignore, ign_off = cat("ignore")
    return {"images": np.stack([s.image for s in samples]), "boxes": boxes.reshape(-1, 4).astype(np.float32),
            "classes": classes.astype(np.int64), "box_offsets": box_off, "ignore": ignore.reshape(-1, 4).astype(np.float32),
            "ignore_offsets": ign_off}


def _unpack(data, source: str) -> list[Sample]:
    out = []
    bo, io = data["box_offsets"], data["ignore_offsets"]
    for k in range(len(data["images"])):
        out.append(Sample(data["images"][k], data["boxes"][bo[k]:bo[k + 1]], data["classes"][bo[k]:bo[k + 1]],
                          data["ignore"][io[k]:io[k + 1]], source=f"{source} #{k}"))
    return out


def build_sim_cache(folder: str | Path, seeds, frames: int, *, size=(384, 288), stride: int = 4,
                    actor_density: float = 10.0, log: Callable[[str], None] = lambda m: None) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = folder / f"sim_seed{seed}_{size[0]}x{size[1]}_n{frames}_s{stride}.npz"
        if not path.is_file():
            log(f"rendering synthetic drive seed {seed}: {frames} frames at {size[0]}x{size[1]}")
            samples = list(sim_samples(seed, frames, size=size, stride=stride, actor_density=actor_density))
            tmp = path.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, **_pack(samples))
            tmp.rename(path)
        paths.append(path)
    return paths


def load_sim_cache(paths) -> list[Sample]:
    out = []
    for p in paths:
        with np.load(p) as data:
            out += _unpack({k: data[k] for k in data.files}, Path(p).stem)
    return out
