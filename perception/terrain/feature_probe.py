"""A linear probe of the terrain features: how much of the synthetic world's truth a softmax regression reads off them.

This is the check that unsupervised training helped (it can fail: random orthonormal filters are a strong
baseline for a linear read-out). Frames of held-out synthetic-world seeds are resampled at a few scales (as the
band pyramid does), normalised (preprocess.yuv_normalized), cut into 36-row strips that tile the frame, and run
through the feature net in ONNX Runtime, exactly as at run time; feature vector (r, c) of a strip is labelled
with the truth at its window's centre pixel (strip row r + 5.5, column 4c + 12, mapped back to the frame):

    traversable   truth["traversability"] >= 0.5   (sky, NaN, left out)
    terrain       truth["terrain_class"]           (sky and actors, 255, left out)

A class-balanced softmax regression (L2, full-batch Nesterov gradient descent on standardised features) is fitted
on the probe's training seeds and scored on its test seeds: accuracy and balanced accuracy (mean per-class recall).
numpy + onnxruntime only: no torch.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import cv2
import numpy as np

from perception.errors import InputError
from perception.terrain import feature_net, preprocess
from perception.terrain.feature_data import sim_frames

TASKS = ("traversable", "terrain")


def _session(weights: dict[str, np.ndarray] | None, width: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    model = feature_net.build_feature_net(weights, width)
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def extract(nets: dict[str, dict[str, np.ndarray] | None], seeds: Iterable[int], frames_per_seed: int, *,
            size: tuple[int, int] = (640, 480), scales: tuple[float, ...] = (1.0, 0.5), step: int = 4,
            progress: Callable[[str], None] | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Features of every net (name -> weights; None = untrained) on the same windows, and their labels.

    Returns ({net: N x 100 float32}, {"traversable": N int64, "terrain": N int64}); a label of -1 = unknown.
    `step` keeps every step-th feature row and column (neighbouring windows overlap almost entirely).
    """
    sessions: dict[tuple[str, int], object] = {}
    feats: dict[str, list[np.ndarray]] = {name: [] for name in nets}
    trav: list[np.ndarray] = []
    terr: list[np.ndarray] = []
    h_band = feature_net.HEIGHT
    for _, seed, frame in sim_frames(seeds, frames_per_seed, size=size):
        truth = frame.truth
        h, w = frame.left.shape[:2]
        for s in scales:
            ws, hs = int(round(w * s)), int(round(h * s))
            if hs < h_band or ws < feature_net.RECEPTIVE_FIELD[1]:
                continue
            x = preprocess.yuv_normalized(cv2.resize(frame.left, (ws, hs), interpolation=cv2.INTER_AREA
                                                     if s < 1 else cv2.INTER_LINEAR))
            rows_out, cols_out = feature_net.output_shape(ws)[2:]
            r_idx = np.arange(0, rows_out, step)
            c_idx = np.arange(0, cols_out, step)
            for top in range(0, hs - h_band + 1, rows_out):
                band = preprocess.to_nchw(x[top:top + h_band])
                yy = top + r_idx[:, None] + 5.5 + 0 * c_idx[None, :]
                xx = 4.0 * c_idx[None, :] + 12.0 + 0 * r_idx[:, None]
                oy = np.clip(np.round((yy + 0.5) / s - 0.5).astype(int), 0, h - 1).ravel()
                ox = np.clip(np.round((xx + 0.5) / s - 0.5).astype(int), 0, w - 1).ravel()
                t = truth["traversability"][oy, ox]
                trav.append(np.where(np.isfinite(t), (np.nan_to_num(t) >= 0.5).astype(np.int64), -1))
                c = truth["terrain_class"][oy, ox].astype(np.int64)
                terr.append(np.where(c == 255, -1, c))
                for name, weights in nets.items():
                    key = (name, ws)
                    if key not in sessions:
                        sessions[key] = _session(weights, ws)
                    (out,) = sessions[key].run(None, {feature_net.INPUT: band})
                    feats[name].append(out[0][:, r_idx][:, :, c_idx].reshape(out.shape[1], -1).T)
        if progress:
            progress(f"probe: seed {seed} frame {frame.index}")
    labels = {"traversable": np.concatenate(trav), "terrain": np.concatenate(terr)}
    return {name: np.concatenate(f).astype(np.float32) for name, f in feats.items()}, labels


def fit_softmax(x: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float = 1e-3, iters: int = 400):
    """Class-balanced L2 softmax regression; returns predict(x) -> labels. Standardises with x's statistics."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1), np.float32)]).astype(np.float64)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    sw = np.where(counts[y] > 0, len(y) / (np.count_nonzero(counts) * np.maximum(counts[y], 1)), 0.0)
    sw /= sw.sum()
    onehot = np.eye(n_classes)[y]
    # step 1/L, L = a bound on the Hessian's largest eigenvalue: 0.5 * lambda_max(Z^T diag(sw) Z) + l2
    v = np.ones(z.shape[1]) / np.sqrt(z.shape[1])
    for _ in range(30):
        v = z.T @ (sw * (z @ v))
        v /= np.linalg.norm(v) + 1e-12
    lr = 1.0 / (0.5 * float(v @ (z.T @ (sw * (z @ v)))) + l2)
    w = np.zeros((z.shape[1], n_classes))
    prev = w.copy()
    for k in range(iters):
        look = w + (k / (k + 3)) * (w - prev)
        logits = z @ look
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        grad = z.T @ (sw[:, None] * (p - onehot)) + l2 * np.vstack([look[:-1], np.zeros((1, n_classes))])
        prev, w = w, look - lr * grad

    def predict(xs: np.ndarray) -> np.ndarray:
        zs = np.hstack([(xs - mean) / std, np.ones((len(xs), 1), np.float32)])
        return np.argmax(zs @ w, axis=1)

    return predict


def score(pred: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, float]:
    present = [c for c in range(n_classes) if np.any(y == c)]
    recalls = [float(np.mean(pred[y == c] == c)) for c in present]
    return {"accuracy": float(np.mean(pred == y)), "balanced_accuracy": float(np.mean(recalls))}


def linear_probe(nets: dict[str, dict[str, np.ndarray] | None], *, train_seeds: Iterable[int] = (100, 101),
                 test_seeds: Iterable[int] = (102, 103), frames_per_seed: int = 6, size: tuple[int, int] = (640, 480),
                 scales: tuple[float, ...] = (1.0, 0.5), max_samples: int = 40_000, seed: int = 0,
                 progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """{task: {net: {accuracy, balanced_accuracy}, "majority": {...}}, "samples": {...}} on held-out seeds."""
    rng = np.random.default_rng(seed)
    x_tr, y_tr = extract(nets, train_seeds, frames_per_seed, size=size, scales=scales, progress=progress)
    x_te, y_te = extract(nets, test_seeds, frames_per_seed, size=size, scales=scales, progress=progress)
    result: dict[str, object] = {"train_seeds": list(train_seeds), "test_seeds": list(test_seeds),
                                 "frames_per_seed": frames_per_seed, "scales": list(scales), "samples": {}}
    for task in TASKS:
        n_classes = 2 if task == "traversable" else len(feature_net_classes())
        tr = np.flatnonzero(y_tr[task] >= 0)
        te = np.flatnonzero(y_te[task] >= 0)
        if len(tr) == 0 or len(te) == 0 or len(np.unique(y_tr[task][tr])) < 2:
            raise InputError(f"too few labelled windows for the {task} probe", subject="linear probe",
                             hint="use more probe frames or a larger frame size")
        tr = rng.choice(tr, min(len(tr), max_samples), replace=False)
        te = rng.choice(te, min(len(te), max_samples), replace=False)
        ytr, yte = y_tr[task][tr], y_te[task][te]
        out: dict[str, dict[str, float]] = {}
        majority = np.bincount(ytr, minlength=n_classes).argmax()
        out["majority"] = score(np.full(len(yte), majority), yte, n_classes)
        for name in nets:
            predict = fit_softmax(x_tr[name][tr], ytr, n_classes)
            out[name] = score(predict(x_te[name][te]), yte, n_classes)
        result[task] = out
        result["samples"][task] = {"train": int(len(tr)), "test": int(len(te))}
    return result


def feature_net_classes() -> list[str]:
    from perception.sim import TERRAIN_CLASSES

    return list(TERRAIN_CLASSES)
