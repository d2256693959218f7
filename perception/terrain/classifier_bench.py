"""Time `OnlineClassifier.update()` on a frame of ~2000 samples with full class-balanced buffers.

    python -m perception.terrain.classifier_bench        # prints {"n_frame", "buffer_per_class", "median_ms", "p90_ms"}

(docs/mapping.md quotes its numbers.)
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from perception.terrain.classifier import FEATURE_DIM, NUM_CLASSES, ClassifierConfig, OnlineClassifier


def bench(n_frame: int = 2000, capacity: int = 1000, repeats: int = 50) -> dict:
    """update() times over `repeats` frames of `n_frame` synthetic samples, buffers of `capacity` per class full."""
    rng = np.random.default_rng(0)
    clf = OnlineClassifier(ClassifierConfig(buffer_capacity=capacity))
    centres = rng.normal(0, 0.5, (NUM_CLASSES, FEATURE_DIM))

    def frame(n):
        y = rng.integers(0, NUM_CLASSES, n)
        x = np.tanh(centres[y] + rng.normal(0, 0.5, (n, FEATURE_DIM))).astype(np.float32)
        return x, np.eye(NUM_CLASSES, dtype=np.float32)[y], rng.uniform(0.5, 1, n).astype(np.float32)

    frames = [frame(n_frame) for _ in range(8)]
    while clf.buffer_counts.min() < capacity:
        clf.update(*frames[0])
    times = sorted(clf.update(*frames[i % len(frames)]).ms for i in range(repeats))
    return {"n_frame": n_frame, "buffer_per_class": capacity, "median_ms": times[len(times) // 2],
            "p90_ms": times[int(len(times) * 0.9)]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", action="store_true", help=argparse.SUPPRESS)  # the old flag; benching is the default
    parser.add_argument("--frame", type=int, default=2000, help="samples per frame (default 2000)")
    parser.add_argument("--capacity", type=int, default=1000, help="buffer samples per class (default 1000)")
    parser.add_argument("--repeats", type=int, default=50, help="timed updates (default 50)")
    args = parser.parse_args(argv)
    if args.frame < 1 or args.capacity < 1 or args.repeats < 1:
        parser.error("--frame, --capacity and --repeats must be >= 1")
    print(json.dumps(bench(args.frame, args.capacity, args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
