"""The online classifier's offline default weights ("learned offline from earlier logs", REFERENCE.md section 1).

The weights decay toward these defaults and `reset()` returns to them; they are what the classifier knows before
it has seen any stereo label of the current terrain (the paper's "default weights, no online learning": 32.1 %
error vs stereo, against 52.2 % with random weights). They only make sense with the feature net they were fitted
on: the file records that net's SHA-256, and `load_defaults` refuses a mismatch (a stale defaults file after the
net was retrained).

File: an .npz without pickles, keys format, weights (5 x F), bias (5), feature_model_sha256, trained_on (text).
Fitted by `perception train classifier` from logged drives (`fit_defaults`): class-balanced softmax regression on
the stereo-labelled windows, several passes, no decay.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception.errors import ModelError
from perception.terrain.classifier import NUM_CLASSES, ClassifierConfig, OnlineClassifier
from perception.terrain.classifier_io import read_npz

FORMAT = "perception.terrain.ClassifierDefaults/1"


@dataclass
class ClassifierDefaults:
    weights: np.ndarray
    bias: np.ndarray
    feature_model_sha256: str
    trained_on: str = ""


def model_digest(path: str | Path) -> str:
    """SHA-256 of a model file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_defaults(path: str | Path, d: ClassifierDefaults) -> Path:
    path = Path(path)
    with open(path, "wb") as fh:  # np.savez would append .npz to a name without it
        np.savez(fh, format=np.array(FORMAT), weights=d.weights.astype(np.float32), bias=d.bias.astype(np.float32),
                 feature_model_sha256=np.array(d.feature_model_sha256), trained_on=np.array(d.trained_on))
    return path


def load_defaults(path: str | Path, feature_model: str | Path | None = None) -> ClassifierDefaults:
    """Read a defaults file; with `feature_model`, check it was fitted on that net (ModelError otherwise)."""
    path = Path(path)
    arrays = read_npz(path)
    if str(arrays.get("format", "")) != FORMAT:
        raise ModelError(f"format {str(arrays.get('format', ''))!r}, expected {FORMAT!r}", subject=str(path),
                         hint="write it with `perception train classifier`")
    w, b = arrays["weights"], arrays["bias"]
    if w.ndim != 2 or w.shape[0] != NUM_CLASSES or b.shape != (NUM_CLASSES,) or not np.isfinite(w).all():
        raise ModelError(f"weights {w.shape}, bias {b.shape}", subject=str(path),
                         hint=f"expected {NUM_CLASSES} x F finite weights and {NUM_CLASSES} biases")
    d = ClassifierDefaults(w.astype(np.float32), b.astype(np.float32), str(arrays["feature_model_sha256"]),
                           str(arrays.get("trained_on", "")))
    if feature_model is not None:
        digest = model_digest(feature_model)
        if digest != d.feature_model_sha256:
            raise ModelError(f"fitted on feature net {d.feature_model_sha256[:12]}, the net in use is {digest[:12]} "
                             f"({feature_model})", subject=str(path),
                             hint="refit the defaults for this net with `perception train classifier`")
    return d


def fit_defaults(features: np.ndarray, targets: np.ndarray, weights: np.ndarray, *, epochs: int = 30,
                 batch: int = 2000, seed: int = 0, progress=None) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Offline class-balanced softmax regression (the online classifier's own step, no decay, no buffers) on
    logged (features, stereo label distributions, confidences). Returns (weights, bias, loss per epoch)."""
    if len(features) == 0:
        raise ModelError("no labelled windows to fit on", subject="fit_defaults",
                         hint="log more frames, with obstacles in the stereo range")
    cls = np.argmax(targets, 1)
    counts = np.bincount(cls, minlength=NUM_CLASSES).astype(np.float64)
    present = counts > 0
    balance = np.zeros(NUM_CLASSES)
    balance[present] = counts[present].sum() / (present.sum() * counts[present])
    w = (weights * balance[cls]).astype(np.float32)
    clf = OnlineClassifier(ClassifierConfig(n_features=features.shape[1], weight_decay=0.0, buffer_capacity=0,
                                            learning_rate=1.0))
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(features))
        total, n = 0.0, 0
        for i in range(0, len(order), batch):
            idx = order[i: i + batch]
            st = clf.update(features[idx], targets[idx], w[idx])
            if np.isfinite(st.loss):
                total += st.loss * len(idx)
                n += len(idx)
        losses.append(total / max(n, 1))
        if progress is not None:
            progress(len(losses), losses[-1])
    return clf.weights.copy(), clf.bias.copy(), losses


def collect_sim_samples(seeds, frames: int, long_range, *, size=(640, 480), tree_density: float = 3.0,
                        every: int = 1, max_per_frame: int = 1500, progress=None):
    """Stereo-labelled band windows of synthetic drives: (features, targets, weights) for `fit_defaults`.

    At most `max_per_frame` windows per frame, every class kept whole before the most common one is thinned
    (a fixed-seed subset), so long drives do not swamp memory and rare obstacle windows are never dropped."""
    from perception.sim import SimConfig, SimWorld
    from perception.stereo.near_range import NearRangeLabeller
    from perception.terrain.long_range import stereo_targets

    xs, ts, ws = [], [], []
    rng = np.random.default_rng(0)
    for seed in seeds:
        world = SimWorld(SimConfig(seed=int(seed), frames=frames, width=size[0], height=size[1],
                                   tree_density=tree_density))
        labeller = NearRangeLabeller()
        for i in range(0, frames, every):
            frame = world.render(i)
            nr = labeller.process(frame)
            ff = long_range.observe(frame.left, frame.left_info, nr.ground)
            if ff is not None:
                near, targets, weights = stereo_targets(ff, nr.labels, long_range.config.min_label_confidence)
                idx = np.flatnonzero(near)
                cls = np.argmax(targets, 1)
                counts = np.bincount(cls, minlength=NUM_CLASSES)
                # thin only the most common class, to what the budget leaves after the others
                common = int(np.argmax(counts))
                room = max(0, max_per_frame - int(counts.sum() - counts[common]))
                thin = np.flatnonzero(cls == common)
                drop = rng.permutation(thin)[room:]
                pick = np.setdiff1d(np.arange(len(idx)), drop)
                xs.append(ff.features[idx[pick]])
                ts.append(targets[pick])
                ws.append(weights[pick])
            if progress is not None:
                progress(seed, i)
    if not xs:
        return np.zeros((0, 100), np.float32), np.zeros((0, NUM_CLASSES), np.float32), np.zeros(0, np.float32)
    return np.concatenate(xs), np.concatenate(ts), np.concatenate(ws)
