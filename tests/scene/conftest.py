"""Tiny scene data sets written on the fly (no shared data needed) and one small trained model per session."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

# name, RGB: sky above, ground below, red boxes; void pixels get (0, 0, 0)
CLASSES = [("sky", (70, 130, 180)), ("ground", (80, 160, 60)), ("box", (220, 20, 60))]
VOID = ("void", (0, 0, 0))
SIZE = (64, 48)  # W, H


def make_scene(rng: np.random.Generator, w: int = SIZE[0], h: int = SIZE[1]):
    """(BGR image, class-index label with 255 void): a horizon, one box, a void strip along the bottom."""
    label = np.zeros((h, w), np.uint8)
    horizon = int(rng.integers(h // 3, 2 * h // 3))
    label[horizon:] = 1
    bw, bh = int(rng.integers(8, 20)), int(rng.integers(8, 16))
    x, y = int(rng.integers(0, w - bw)), int(rng.integers(max(0, horizon - bh), h - bh))
    label[y:y + bh, x:x + bw] = 2
    label[-3:] = 255
    base = np.array([[200, 150, 110], [60, 140, 90], [40, 40, 200]], np.float32)  # BGR per class
    img = base[np.minimum(label, 2)] + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), label


def write_folder(root: Path, n: int = 12, *, colour: bool, seed: int = 0) -> Path:
    """images/ + labels/ (+ colormap.txt): colour-coded labels when `colour`, else class-index PNGs."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    entries = CLASSES + [VOID] if colour else [CLASSES[0], CLASSES[1], VOID, CLASSES[2]]  # index file: void is 2
    lines = "".join(f"{name} {r} {g} {b}\n" for name, (r, g, b) in entries)
    (root / "colormap.txt").write_text("# name R G B\n" + lines)
    for i in range(n):
        img, lab = make_scene(rng)
        cv2.imwrite(str(root / "images" / f"f{i:03d}.jpg"), img)
        if colour:
            rgb = np.zeros((*lab.shape, 3), np.uint8)
            for k, (_, c) in enumerate(CLASSES):
                rgb[lab == k] = c
            cv2.imwrite(str(root / "labels" / f"f{i:03d}.png"), rgb[:, :, ::-1])
        else:
            raw = np.choose(np.minimum(lab, 3), [0, 1, 3, 2]).astype(np.uint8)  # classes 0 1 2 -> raw 0 1 3; void -> 2
            cv2.imwrite(str(root / "labels" / f"f{i:03d}.png"), raw)
    return root


def train_cli(data: Path, out: Path, *extra: str, steps: int = 40) -> dict:
    from perception.cli import main

    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["train", "scene", "--data", str(data), "--out", str(out), "--size", "64x48", "--crop", "48x40",
                     "--batch", "4", "--steps", str(steps), "--threads", "1", "--val-every", "20",
                     "--checkpoint-every", "10", "--warmup", "5", "--no-progress", "--json", *extra])
    assert code == 0, buf.getvalue()
    return json.loads(buf.getvalue().strip().splitlines()[-1])


@pytest.fixture(scope="session")
def colour_run(tmp_path_factory):
    """A small model trained by the CLI on colour-coded labels + colormap.txt (shared by several tests)."""
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("scene_colour")
    data = write_folder(root / "data", colour=True)
    summary = train_cli(data, root / "run", steps=40)
    return data, root / "run", summary
