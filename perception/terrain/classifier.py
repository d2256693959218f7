"""The near-to-far online classifier (REFERENCE.md section 1; Hadsell et al., JFR 2009).

Stereo labels the near range; this classifier learns, every frame, to predict those labels from the appearance
features of the same windows, and is then applied to every window of the image out to the horizon.

Model: 5-class softmax logistic regression on 100-d features, ``p = softmax(W x + b)`` (W 5x100, b 5).

Loss: the stereo label of a window is a distribution ``t`` over the 5 classes with a confidence ``w``; the loss of
a batch is the weighted mean of ``KL(t || p) = sum_k t_k log(t_k / p_k)``. Its gradient with respect to the logits
is ``w * (p - t)``, the same as cross-entropy with soft targets (KL differs from it only by the target entropy,
which does not depend on the weights).

One ``update()`` per frame (the online learning of the paper):

1. the current frame's samples are checked (shapes; rows with NaN/inf features, bad targets or zero weight are
   dropped and counted); targets are normalised to sum to 1;
2. the model as it is BEFORE the update predicts them: that gives the frame's ``loss`` and ``error_vs_targets``
   (the paper's "error against stereo labels", measured prequentially, i.e. on data not yet trained on) and feeds
   the learning-confidence estimate;
3. ``steps_per_frame`` full-batch gradient steps on the current frame plus the class-balanced ring buffers (one
   buffer per class, ``buffer_capacity`` samples each, so the class ratio of the training set stays fixed however
   skewed the stream is: on real terrain most windows are ground); the step size is normalised by the batch's
   mean ``|x|^2 + 1`` (normalised LMS), so ``learning_rate`` means the same whatever the feature scale. The loss
   is L-smooth with ``L <= 0.5 * mean(|x|^2 + 1)`` (the softmax Jacobian's eigenvalues are <= 1/2), so any
   ``learning_rate`` below 4 provably descends; the default 2 is the classic step 1/L. A step that leaves the
   weights non-finite is undone and reported;
4. after each step a decoupled weight decay pulls W and b toward the DEFAULT weights (learned offline from earlier
   logs; zeros when none are given): ``W <- W0 + (1 - weight_decay) * (W - W0)``. What the robot learned in one
   place fades back to the prior when it stops being reinforced;
5. the frame's samples go into the ring buffer of their argmax class (when a frame holds more samples of a class
   than the buffer does, an evenly spaced subset is kept, which keeps the spread over the image).

Learning confidence (``confidence``): an exponential moving average, factor ``confidence_smoothing``, of the
frame's agreement with stereo before the update, ``1 - error_vs_targets`` (the fraction, weighted by stereo
confidence, of windows whose argmax class equals the stereo argmax class). It is the classifier's own measured
accuracy on the newest stereo-labelled data, so a classifier that has not caught up with new terrain reports a
low confidence for a few frames, and the map weights its far-range output accordingly. Before any update it is 0.

An ``update()`` with ~2000 frame samples and full buffers of 1000 per class takes about 1 ms (docs/mapping.md;
``python -m perception.terrain.classifier_bench``). The buffers are `ring_buffers.RingBuffers`; the .npz file
format of `save` / `load` is in `classifier_io`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception.errors import InputError
from perception.params import describe_config, param, validate_config
from perception.terrain.ring_buffers import RingBuffers

CLASS_NAMES = ("super_ground", "ground", "footline", "obstacle", "super_obstacle")
"""The 5 terrain classes in index order (shared with the stereo labeller and the map)."""
NUM_CLASSES = len(CLASS_NAMES)
FEATURE_DIM = 100
FILE_FORMAT = "perception.terrain.OnlineClassifier/1"


@dataclass(frozen=True)
class ClassifierConfig:
    """Parameters of `OnlineClassifier`; each has a description and a valid range, checked on creation."""

    n_features: int = param(FEATURE_DIM, "length of one feature vector (ConvNet features of a band window)", 1, 4096)
    learning_rate: float = param(
        2.0, "normalised step: the step is learning_rate / mean(|x|^2 + 1) over the batch, so it does not depend on "
        "the feature scale; below 4 every step provably descends, above that it depends on how the features are "
        "conditioned", 1e-6, 16.0)
    steps_per_frame: int = param(1, "gradient steps per update() (each on the current frame plus the buffers)", 1, 100)
    weight_decay: float = param(
        0.2, "fraction of the distance to the default weights removed after every step (decoupled decay toward "
        "the offline defaults, not toward zero; 0.2 measured best for far accuracy with the shipped defaults, "
        "docs/terrain.md); 0 = off", 0.0, 0.5)
    buffer_capacity: int = param(
        1000, "samples kept per class in the class-balanced ring buffers; 0 = train on the current frame only", 0,
        100_000)
    buffer_weight: float = param(
        1.0, "weight of one buffered sample relative to one current-frame sample (times its stereo confidence)",
        0.0, 100.0)
    confidence_smoothing: float = param(
        0.8, "moving-average factor of the learning confidence (0 = last frame only; 0.8 ~ last 5 frames)",
        0.0, 0.999)
    min_weight: float = param(0.0, "samples whose stereo confidence is at or below this are dropped", 0.0, 1.0)
    adaptive_decay: bool = param(
        True, "scale weight_decay by the squared learning confidence (this frame included): where the defaults "
        "agree with stereo the weights stay near them, where they do not (unfamiliar terrain) online learning "
        "takes over")

    def __post_init__(self) -> None:
        validate_config(self)

    @classmethod
    def describe(cls) -> dict[str, dict]:
        """{name: {default, help, range, choices}} for every parameter (ROS parameter declarations, docs)."""
        return describe_config(cls)


@dataclass
class UpdateStats:
    """What one `update()` did. Loss and error are measured on the frame's samples BEFORE the update."""

    loss: float = float("nan")  # weighted mean KL(stereo || predicted) of the frame's valid samples, nats
    error_vs_targets: float = float("nan")  # weighted fraction whose argmax differs from the stereo argmax
    n_samples: int = 0  # valid samples of this frame that were used
    n_input: int = 0  # rows given
    n_dropped_nonfinite: int = 0  # rows with a NaN/inf feature
    n_dropped_target: int = 0  # rows whose target has NaN/inf or negative entries, or sums to 0
    n_dropped_weight: int = 0  # rows whose weight is NaN/inf, negative or <= min_weight
    n_buffer: int = 0  # buffered samples that took part in the steps
    batch_loss: float = float("nan")  # weighted mean KL over frame + buffers, before the first step
    steps: int = 0
    confidence: float = 0.0  # learning confidence after this frame
    skipped: bool = False
    reason: str = ""
    ms: float = 0.0


# Rows per matrix product. OpenBLAS runs a GEMM on several threads once M*N*K exceeds 4 * 65536; for these
# skinny products (5 x F x rows) that buys nothing, and on a loaded 2-core machine the threaded calls spin and
# stall: measured p90 12-88 ms, worst 300 ms for 7000 rows, against p90 < 5 ms, worst 9 ms, in 512-row chunks.
_CHUNK_MACS = 4 * 65536


def _chunk_rows(n_features: int) -> int:
    return max(16, _CHUNK_MACS // (NUM_CLASSES * n_features))


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _neg_entropy(t: np.ndarray, axis: int) -> np.ndarray:
    """sum_k t_k log t_k, with 0 log 0 = 0."""
    return (t * np.log(np.maximum(t, 1e-30))).sum(axis=axis)


class OnlineClassifier:
    """5-class softmax regression trained online from stereo label distributions (see the module docstring).

    `default_weights` / `default_bias`: the offline prior the weights decay toward and `reset()` returns to
    (zeros when not given).
    """

    def __init__(self, config: ClassifierConfig | None = None, default_weights: np.ndarray | None = None,
                 default_bias: np.ndarray | None = None):
        self.config = config or ClassifierConfig()
        f = self.config.n_features
        self.default_weights = self._param_array(default_weights, (NUM_CLASSES, f), "default_weights")
        self.default_bias = self._param_array(default_bias, (NUM_CLASSES,), "default_bias")
        self._buffers = RingBuffers(NUM_CLASSES, self.config.buffer_capacity, f)
        self.reset()

    # ------------------------------------------------------------------ state
    @staticmethod
    def _param_array(value, shape, name) -> np.ndarray:
        if value is None:
            return np.zeros(shape, np.float32)
        arr = np.asarray(value, dtype=np.float32)
        if arr.shape != shape:
            raise InputError(f"shape {arr.shape}, expected {shape}", subject=name)
        if not np.isfinite(arr).all():
            raise InputError("contains NaN or inf", subject=name)
        return arr.copy()

    def reset(self) -> None:
        """Back to the default weights; buffers emptied; confidence and counters back to 0."""
        self.weights = self.default_weights.copy()
        self.bias = self.default_bias.copy()
        self._buffers.clear()
        self._conf_num = 0.0
        self._conf_den = 0.0
        self.n_updates = 0

    @property
    def confidence(self) -> float:
        """Learning confidence 0..1: moving average of the pre-update agreement with stereo (module docstring)."""
        return self._conf_num / self._conf_den if self._conf_den > 0 else 0.0

    @property
    def buffer_counts(self) -> np.ndarray:
        """Samples held per class in the ring buffers."""
        return self._buffers.count.copy()

    # ------------------------------------------------------------------ inference
    def _check_features(self, features) -> np.ndarray:
        x = np.asarray(features)
        if x.ndim != 2 or x.shape[1] != self.config.n_features:
            raise InputError(f"shape {x.shape}, expected N x {self.config.n_features}", subject="features",
                             hint="one row per window, one column per feature")
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise InputError(f"dtype {x.dtype} is not numeric", subject="features")
        return np.ascontiguousarray(x, dtype=np.float32)

    def _logits(self, x: np.ndarray) -> np.ndarray:
        """5 x N logits, W x + b, in row chunks (see _CHUNK_MACS)."""
        z = np.empty((NUM_CLASSES, len(x)), np.float32)
        step = _chunk_rows(x.shape[1])
        for a in range(0, len(x), step):
            np.matmul(self.weights, x[a:a + step].T, out=z[:, a:a + step])
        z += self.bias[:, None]
        return z

    def predict_proba(self, features) -> np.ndarray:
        """N x 5 class probabilities (float32). Rows with a NaN/inf feature come out as NaN rows."""
        x = self._check_features(features)
        ok = np.isfinite(x).all(axis=1)
        out = np.full((len(x), NUM_CLASSES), np.nan, np.float32)
        if ok.all():
            out[:] = np.exp(_log_softmax(self._logits(x), axis=0)).T
        elif ok.any():
            out[ok] = np.exp(_log_softmax(self._logits(x[ok]), axis=0)).T
        return out

    def predict(self, features) -> np.ndarray:
        """N argmax classes (int64); -1 for rows with a NaN/inf feature."""
        p = self.predict_proba(features)
        bad = ~np.isfinite(p).all(axis=1)
        cls = np.argmax(np.where(bad[:, None], 0.0, p), axis=1)
        cls[bad] = -1
        return cls

    # ------------------------------------------------------------------ learning
    def _check_batch(self, features, targets, weights, stats: UpdateStats):
        x = self._check_features(features)
        t = np.asarray(targets)
        if t.ndim != 2 or t.shape != (len(x), NUM_CLASSES):
            raise InputError(f"shape {t.shape}, expected {len(x)} x {NUM_CLASSES}", subject="targets",
                             hint="one stereo label distribution (5 class probabilities) per feature row")
        t = t.astype(np.float32, copy=False)
        if weights is None:
            w = np.ones(len(x), np.float32)
        else:
            w = np.asarray(weights, dtype=np.float32).reshape(-1)
            if w.shape != (len(x),):
                raise InputError(f"{w.size} weights for {len(x)} rows", subject="weights")
        stats.n_input = len(x)
        ok_x = np.isfinite(x).all(axis=1)
        tsum = t.sum(axis=1)
        ok_t = np.isfinite(t).all(axis=1) & (t >= 0).all(axis=1) & (tsum > 0)
        ok_w = np.isfinite(w) & (w > self.config.min_weight) & (w >= 0)
        stats.n_dropped_nonfinite = int((~ok_x).sum())
        stats.n_dropped_target = int((ok_x & ~ok_t).sum())
        stats.n_dropped_weight = int((ok_x & ok_t & ~ok_w).sum())
        keep = ok_x & ok_t & ok_w
        if not keep.all():
            x, t, w, tsum = x[keep], t[keep], w[keep], tsum[keep]
        t = np.ascontiguousarray((t / tsum[:, None]).T)  # class-major 5 x N
        return x, t, w

    def _forward(self, x, t, w, negent):
        """For one part of the batch (t class-major 5 x N): gradient of sum(w * KL) w.r.t. W and b, KL per row
        and log p (5 x N)."""
        z = self._logits(x)
        z -= z.max(axis=0)
        e = np.exp(z)
        s = e.sum(axis=0)
        logp = z - np.log(s)
        g = (e / s - t) * w
        gw = np.zeros_like(self.weights)
        step = _chunk_rows(x.shape[1])
        for a in range(0, len(x), step):
            gw += g[:, a:a + step] @ x[a:a + step]
        kl = negent - (t * logp).sum(axis=0)
        return gw, g.sum(axis=1), kl, logp

    def update(self, features, targets, weights=None) -> UpdateStats:
        """One online learning step on a frame's near-range samples (module docstring).

        features N x n_features, targets N x 5 (stereo label distributions; normalised here), weights N (stereo
        confidence; None = all 1). An empty batch (or one left empty after dropping bad rows) changes nothing and
        returns stats with `skipped` set and the reason.
        """
        start = time.perf_counter()
        cfg = self.config
        stats = UpdateStats()
        x, t, w = self._check_batch(features, targets, weights, stats)
        stats.n_samples = len(x)
        if len(x) == 0:
            stats.skipped = True
            stats.reason = "no samples" if stats.n_input == 0 else "every sample was dropped (see n_dropped_*)"
            stats.confidence = self.confidence
            stats.ms = (time.perf_counter() - start) * 1e3
            return stats

        sq = np.einsum("ij,ij->i", x, x) + 1.0  # |x|^2 + 1 (the bias input)
        negent = _neg_entropy(t, axis=0)
        parts = [(x, t, w, negent)]
        sq_sum = float(sq @ w)
        w_sum = float(w.sum())
        stats.n_buffer = self._buffers.total()
        if stats.n_buffer and cfg.buffer_weight > 0:
            bx, bt, bw, bsq, bneg = self._buffers.flat()
            if cfg.buffer_weight != 1.0:
                bw = bw * np.float32(cfg.buffer_weight)
            parts.append((bx, bt, bw, bneg))
            sq_sum += float(bsq @ bw)
            w_sum += float(bw.sum())
        rate = np.float32(cfg.learning_rate / sq_sum)  # = learning_rate / mean(|x|^2 + 1) / sum(w)
        keep = np.float32(1.0 - cfg.weight_decay)

        for s in range(cfg.steps_per_frame):
            gw = np.zeros_like(self.weights)
            gb = np.zeros_like(self.bias)
            batch_kl = 0.0
            for i, (px, pt, pw, pneg) in enumerate(parts):
                dw, db, kl, logp = self._forward(px, pt, pw, pneg)
                gw += dw
                gb += db
                if s == 0:
                    batch_kl += float(kl @ pw)
                    if i == 0:  # the frame itself, before any step: prequential loss and error
                        stats.loss = float(kl @ pw) / float(pw.sum())
                        wrong = np.argmax(logp, axis=0) != np.argmax(pt, axis=0)
                        stats.error_vs_targets = float(pw[wrong].sum()) / float(pw.sum())
                        if cfg.adaptive_decay:
                            a = cfg.confidence_smoothing
                            agree = (a * self._conf_num + 1.0 - stats.error_vs_targets) / (a * self._conf_den + 1.0)
                            keep = np.float32(1.0 - cfg.weight_decay * agree * agree)
            if s == 0:
                stats.batch_loss = batch_kl / w_sum
            before = (self.weights.copy(), self.bias.copy())
            self.weights -= rate * gw
            self.bias -= rate * gb
            if cfg.weight_decay > 0:
                self.weights = self.default_weights + keep * (self.weights - self.default_weights)
                self.bias = self.default_bias + keep * (self.bias - self.default_bias)
            if not (np.isfinite(self.weights).all() and np.isfinite(self.bias).all()):
                self.weights, self.bias = before
                stats.reason = "a step left the weights non-finite and was undone (learning_rate too high?)"
                break
            stats.steps += 1

        self._buffers.push(x, t, w, sq, negent)
        alpha = cfg.confidence_smoothing
        self._conf_num = alpha * self._conf_num + (1.0 - stats.error_vs_targets)
        self._conf_den = alpha * self._conf_den + 1.0
        self.n_updates += 1
        stats.confidence = self.confidence
        stats.ms = (time.perf_counter() - start) * 1e3
        return stats

    def relax(self, steps: int = 1) -> None:
        """Apply only the weight decay toward the defaults, `steps` times (e.g. for frames without stereo)."""
        keep = np.float32((1.0 - self.config.weight_decay) ** max(0, int(steps)))
        self.weights = self.default_weights + keep * (self.weights - self.default_weights)
        self.bias = self.default_bias + keep * (self.bias - self.default_bias)

    # ------------------------------------------------------------------ persistence (classifier_io)
    def save(self, path, *, include_buffers: bool = True) -> Path:
        """Write weights, defaults, config, confidence state (and the buffers) as an .npz (no pickle)."""
        from perception.terrain.classifier_io import save_classifier

        return save_classifier(self, path, include_buffers=include_buffers)

    @classmethod
    def load(cls, path) -> OnlineClassifier:
        """Read a file written by `save` (np.load with allow_pickle=False). Bad files raise ModelError."""
        from perception.terrain.classifier_io import load_classifier

        return load_classifier(cls, path)


if __name__ == "__main__":  # the former benchmark command; it lives in classifier_bench now
    from perception.terrain.classifier_bench import main

    raise SystemExit(main())
