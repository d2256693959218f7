"""Pictures of the synthetic world (depth, class overlays, top-down map) and its render speed.

    python -m perception.sim.preview --out docs/images          # the PNGs in docs/sim.md
    python -m perception.sim.preview --bench                    # frames/s at 320x240 and 640x480
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from perception.sim import config as C


def colour_depth(depth: np.ndarray, far: float = 1000.0) -> np.ndarray:
    """BGR picture of a depth map: log scale from 1 m (red) to `far` (blue), sky black."""
    finite = np.isfinite(depth)
    x = np.log(np.clip(np.where(finite, depth, far), 1.0, far)) / np.log(far)
    img = cv2.applyColorMap((255 - x * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    img[~finite] = 0
    return img


def overlay(image: np.ndarray, labels: np.ndarray, colours, alpha: float = 0.55, skip: int | None = None) -> np.ndarray:
    """The image with each label painted in its colour (labels >= len(colours) or == skip stay as they are)."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(colours)] = colours
    paint = lut[labels]
    mask = labels < len(colours)
    if skip is not None:
        mask &= labels != skip
    out = image.copy()
    out[mask] = (alpha * paint[mask] + (1 - alpha) * image[mask]).astype(np.uint8)
    return out


def map_picture(world, frame_index: int | None = None, size: int = 480) -> np.ndarray:
    """Top-down terrain map (north up), the driven path in white, the vehicle at the frame in red."""
    m = world.traversability_map(frame_index)
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(C.TERRAIN_COLORS)] = C.TERRAIN_COLORS
    img = lut[m["terrain_class"]]
    res, (x0, y0) = m["resolution"], m["origin"]
    states = [world.drive.state(i) for i in range(0, world.cfg.frames, max(1, world.cfg.frames // 50))]
    pts = np.array([[(s.position[0] - x0) / res, (s.position[1] - y0) / res] for s in states], np.int32)
    cv2.polylines(img, [pts], False, (255, 255, 255), 2)
    if frame_index is not None:
        s = world.drive.state(frame_index)
        c = (int((s.position[0] - x0) / res), int((s.position[1] - y0) / res))
        tip = (int(c[0] + 12 * np.cos(s.yaw)), int(c[1] + 12 * np.sin(s.yaw)))
        cv2.arrowedLine(img, c, tip, (0, 0, 255), 2, tipLength=0.5)
    img = img[::-1]  # rows grow with y: flip so that +y (left of the start) is up
    scale = size / max(img.shape[:2])
    return cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def legend(names, colours, width: int) -> np.ndarray:
    """A strip naming each colour."""
    cols = 4
    rows = -(-len(names) // cols)
    img = np.full((22 * rows + 4, width, 3), 255, np.uint8)
    for k, (name, col) in enumerate(zip(names, colours)):
        x, y = (k % cols) * (width // cols) + 4, (k // cols) * 22 + 4
        cv2.rectangle(img, (x, y), (x + 16, y + 16), tuple(int(v) for v in col), -1)
        cv2.putText(img, f"{k} {name}", (x + 20, y + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def write_gallery(out: Path, seed: int = 0, size: str = "480x360", frame: int = 90, changed: int = 130) -> list[Path]:
    """The PNGs of docs/sim.md: one frame's left / right images, depth, terrain and semantic overlays, top-down map;
    the same drive after its change; a strip of frames along the drive."""
    from perception.sim import SimConfig, SimWorld

    out.mkdir(parents=True, exist_ok=True)
    world = SimWorld(SimConfig.with_size(size, seed=seed, frames=200, change_frame=100))
    written = []

    def save(name, img):
        path = out / f"sim_{name}.png"
        cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        written.append(path)

    f = world.render(frame)
    t = f.truth
    w = f.left.shape[1]
    save("left", f.left)
    save("right", f.right)
    save("depth", colour_depth(t["depth"]))
    save("terrain", np.vstack([overlay(f.left, t["terrain_class"], C.TERRAIN_COLORS),
                               legend(C.TERRAIN_CLASSES, C.TERRAIN_COLORS, w)]))
    sem = overlay(f.left, t["semantic"], C.SEMANTIC_COLORS, skip=C.SKY)
    for ob in t["objects"]:
        if ob["cls"] in C.ACTOR_CLASSES and ob["pixels_visible"] > 20 and ob["distance"] < 80:
            x0, y0, x1, y1 = (int(round(v)) for v in ob["box2d"])
            cv2.rectangle(sem, (x0, y0), (x1, y1), (255, 255, 255), 1)
            cv2.putText(sem, f"{ob['cls']} {ob['distance']:.0f}m", (x0, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.35, (255, 255, 255), 1, cv2.LINE_AA)
    save("semantic", np.vstack([sem, legend(C.SEMANTIC_CLASSES, C.SEMANTIC_COLORS, w)]))
    save("map", map_picture(world, frame))
    save("changed", world.render(changed).left)
    strip = [cv2.resize(world.render(i).left, (w // 2, f.left.shape[0] // 2), interpolation=cv2.INTER_AREA)
             for i in (0, 60, 120, 180)]
    save("drive", np.vstack([np.hstack(strip[:2]), np.hstack(strip[2:])]))
    return written


def bench(sizes=("320x240", "640x480"), frames: int = 10, repeats: int = 3) -> dict:
    """Stereo frames per second (left + right + truth) of `SimWorld.render`; the best of `repeats` runs."""
    from perception.sim import SimConfig, SimWorld

    result = {}
    for size in sizes:
        world = SimWorld(SimConfig.with_size(size, seed=0, frames=200))
        world.render(0)
        best = np.inf
        for r in range(repeats):
            t = time.perf_counter()
            for i in range(frames):
                world.render(1 + (r * frames + i) * 5 % 199)
            best = min(best, (time.perf_counter() - t) / frames)
        result[size] = {"ms_per_stereo_frame": round(best * 1e3, 1), "frames_per_s": round(1.0 / best, 2)}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perception.sim.preview", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="folder for the gallery PNGs")
    parser.add_argument("--bench", action="store_true", help="measure render speed; JSON on the last stdout line")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.out:
        for p in write_gallery(args.out, seed=args.seed):
            print(f"{p} {p.stat().st_size // 1024} KiB", file=sys.stderr)
    if args.bench:
        print(json.dumps(bench()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
