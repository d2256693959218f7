"""The near-to-far online classifier: learns from soft stereo targets, keeps the class balance, decays to its
defaults, adapts after a shift, survives bad input, and saves/loads exactly."""
from __future__ import annotations

import numpy as np
import pytest

from perception.errors import InputError, ModelError
from perception.terrain.classifier import (
    CLASS_NAMES, NUM_CLASSES, ClassifierConfig, OnlineClassifier,
)

F = 100
NATURAL = [0.15, 0.5, 0.05, 0.2, 0.1]  # a ground-heavy class mix, as on real terrain


class Stream:
    """Linearly separable 5-class features shaped like ConvNet tanh outputs, with soft stereo targets."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.centres = self.rng.normal(0.0, 1.0, (NUM_CLASSES, F))

    def frame(self, n: int = 500, mix=None, soft: float = 0.8):
        y = self.rng.choice(NUM_CLASSES, n, p=mix)
        x = np.tanh(0.5 * self.centres[y] + self.rng.normal(0.0, 0.5, (n, F))).astype(np.float32)
        t = np.full((n, NUM_CLASSES), (1.0 - soft) / (NUM_CLASSES - 1), np.float32)
        t[np.arange(n), y] = soft
        return x, t, y


def accuracy(clf: OnlineClassifier, stream: Stream, **kw) -> float:
    x, _, y = stream.frame(2000, **kw)
    return float((clf.predict(x) == y).mean())


def test_classes_are_the_shared_five_in_order():
    assert CLASS_NAMES == ("super_ground", "ground", "footline", "obstacle", "super_obstacle")


def test_learns_a_separable_problem_from_soft_targets_and_the_loss_falls():
    stream = Stream(1)
    clf = OnlineClassifier(ClassifierConfig(weight_decay=0.002))  # zero defaults: decay slowly
    losses = [clf.update(*stream.frame(500, NATURAL)[:2]).loss for _ in range(15)]
    assert accuracy(clf, stream) > 0.97
    # the loss is measured before each update (prequential), so it falls only if learning generalises
    assert losses[-1] < 0.5 * losses[0]
    assert np.mean(losses[-3:]) < np.mean(losses[3:6])
    # with more frames the predictions approach the soft target (0.8) without overshooting it
    for _ in range(60):
        clf.update(*stream.frame(500, NATURAL)[:2])
    x, _, y = stream.frame(500)
    p = clf.predict_proba(x)
    assert p.shape == (500, NUM_CLASSES) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert 0.7 < float(np.median(p[np.arange(500), y])) < 0.85


def test_first_loss_is_the_kl_to_the_uniform_prediction():
    stream = Stream(2)
    x, t, _ = stream.frame(50)
    st = OnlineClassifier().update(x, t)  # zero weights: p = 1/5 everywhere
    expected = float(np.mean((t * np.log(t)).sum(axis=1) + np.log(NUM_CLASSES)))
    assert st.loss == pytest.approx(expected, rel=1e-5)
    assert st.n_samples == 50 and st.steps == 1 and not st.skipped


def test_one_step_follows_the_kl_gradient():
    """One step with no buffers and no decay moves W by -step * dKL/dW (checked by finite differences)."""
    stream = Stream(3)
    x, t, _ = stream.frame(40)
    w = np.linspace(0.5, 1.0, 40).astype(np.float32)
    cfg = ClassifierConfig(buffer_capacity=0, weight_decay=0.0, learning_rate=0.1)
    rng = np.random.default_rng(0)
    w0 = rng.normal(0, 0.1, (NUM_CLASSES, F)).astype(np.float32)
    clf = OnlineClassifier(cfg, default_weights=w0)

    def loss(W):
        z = x.astype(np.float64) @ W.T
        logp = z - z.max(1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(1, keepdims=True))
        return float((w * (t * (np.log(t) - logp)).sum(1)).sum() / w.sum())

    num = np.zeros((NUM_CLASSES, F))
    for k, j in [(0, 0), (1, 7), (3, 50), (4, 99), (2, 33)]:
        e = np.zeros((NUM_CLASSES, F))
        e[k, j] = 1e-4
        num[k, j] = (loss(w0 + e) - loss(w0 - e)) / 2e-4
    clf.update(x, t, w)
    step = 0.1 / float(((np.einsum("ij,ij->i", x, x) + 1) * w).sum() / w.sum())
    moved = (w0 - clf.weights) / step
    for k, j in [(0, 0), (1, 7), (3, 50), (4, 99), (2, 33)]:
        assert moved[k, j] == pytest.approx(num[k, j], rel=1e-3, abs=1e-6)


def test_class_balanced_buffers_keep_the_ratio_under_a_skewed_stream():
    stream = Stream(4)
    clf = OnlineClassifier(ClassifierConfig(buffer_capacity=200, weight_decay=0.002))
    skewed = [0.02, 0.9, 0.02, 0.04, 0.02]
    for _ in range(40):
        clf.update(*stream.frame(500, skewed)[:2])
    # 500 frames x 2 % = 10 rare samples a frame: after 40 frames every buffer is full, ratio 1:1:1:1:1
    assert clf.buffer_counts.tolist() == [200] * NUM_CLASSES


def test_buffers_let_rare_classes_be_learned():
    """On a stream that is 97 % ground, the class-balanced buffers are what lets the rare classes be learned:
    without them (current frame only) most rare-class windows are called ground."""
    recall = {}
    for capacity in (1000, 0):
        stream = Stream(2)
        clf = OnlineClassifier(ClassifierConfig(buffer_capacity=capacity, weight_decay=0.002))
        for _ in range(30):
            clf.update(*stream.frame(500, [0.005, 0.97, 0.005, 0.015, 0.005])[:2])
        x, _, y = stream.frame(2000)
        p = clf.predict(x)
        recall[capacity] = np.mean([(p[y == c] == c).mean() for c in (0, 2, 3, 4)])
    assert recall[1000] > 0.7
    assert recall[1000] > recall[0] + 0.25


def test_weight_decay_pulls_toward_the_defaults_not_zero():
    stream = Stream(5)
    defaults = np.random.default_rng(1).normal(0, 0.2, (NUM_CLASSES, F)).astype(np.float32)
    bias = np.arange(NUM_CLASSES, dtype=np.float32) * 0.1
    far = {}
    for decay in (0.0, 0.05):
        clf = OnlineClassifier(ClassifierConfig(weight_decay=decay, adaptive_decay=False), defaults, bias)
        for _ in range(20):
            clf.update(*stream.frame(300)[:2])
        far[decay] = float(np.abs(clf.weights - defaults).sum())
    assert far[0.05] < 0.7 * far[0.0]
    # with no data the weights drift back to the defaults (not to zero)
    moved = float(np.abs(clf.weights - defaults).max())
    clf.relax(200)
    assert float(np.abs(clf.weights - defaults).max()) < moved * 0.95 ** 200 * 1.01
    np.testing.assert_allclose(clf.weights, defaults, atol=1e-4)
    np.testing.assert_allclose(clf.bias, bias, atol=1e-4)


def test_adaptive_decay_lets_go_of_defaults_that_disagree_with_stereo():
    stream = Stream(6)
    bad = np.random.default_rng(2).normal(0, 0.5, (NUM_CLASSES, F)).astype(np.float32)  # wrong about this terrain
    moved = {}
    for adaptive in (False, True):
        clf = OnlineClassifier(ClassifierConfig(weight_decay=0.3, adaptive_decay=adaptive), bad)
        for _ in range(15):
            st = clf.update(*stream.frame(300, NATURAL)[:2])
        moved[adaptive] = (float(np.abs(clf.weights - bad).sum()), st.error_vs_targets)
    assert moved[True][0] > 1.5 * moved[False][0]  # learned more of the new terrain
    assert moved[True][1] < moved[False][1]


def test_adapts_after_a_distribution_shift():
    """Obstacle features move (new terrain): the error against stereo jumps, then falls back within a few
    frames; the learning confidence dips and recovers. `frames_to_adapt` in the near-to-far eval counts this."""
    stream = Stream(3)
    clf = OnlineClassifier(ClassifierConfig(weight_decay=0.002))  # zero defaults: decay slowly
    for _ in range(30):
        st = clf.update(*stream.frame(1000, NATURAL)[:2])
    assert st.error_vs_targets < 0.01 and st.confidence > 0.98
    stream.centres[3] = stream.rng.normal(0.0, 1.0, F)
    errors, confidence = [], []
    for _ in range(20):
        st = clf.update(*stream.frame(1000, NATURAL)[:2])
        errors.append(st.error_vs_targets)
        confidence.append(st.confidence)
    assert errors[0] > 0.1  # the shift is real: obstacles (20 %) are misclassified at first
    frames_to_adapt = next(i + 1 for i, e in enumerate(errors) if e < 0.05)
    assert frames_to_adapt <= 10
    assert min(confidence) < 0.9 and confidence[-1] > 0.95
    assert accuracy(clf, stream) > 0.97


def test_save_load_round_trip_is_exact(tmp_path):
    stream = Stream(6)
    cfg = ClassifierConfig(buffer_capacity=50, weight_decay=0.01, learning_rate=1.5)
    clf = OnlineClassifier(cfg, default_bias=np.ones(NUM_CLASSES, np.float32))
    for _ in range(5):
        clf.update(*stream.frame(100)[:2])
    path = clf.save(tmp_path / "clf")  # no suffix added
    assert path.exists() and path.name == "clf"
    back = OnlineClassifier.load(path)
    assert back.config == cfg
    np.testing.assert_array_equal(back.weights, clf.weights)
    np.testing.assert_array_equal(back.bias, clf.bias)
    np.testing.assert_array_equal(back.default_bias, clf.default_bias)
    np.testing.assert_array_equal(back.buffer_counts, clf.buffer_counts)
    assert back.confidence == clf.confidence and back.n_updates == clf.n_updates
    x, t, _ = stream.frame(100)
    a, b = clf.update(x, t), back.update(x, t)
    assert a.loss == b.loss and a.batch_loss == b.batch_loss
    np.testing.assert_array_equal(back.weights, clf.weights)


def test_load_refuses_other_files(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        OnlineClassifier.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a readable"):
        OnlineClassifier.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros((5, 100)))
    with pytest.raises(ModelError, match="format"):
        OnlineClassifier.load(tmp_path / "other.npz")
    np.savez(tmp_path / "pickled.npz", format=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelError):  # object arrays need pickle: refused
        OnlineClassifier.load(tmp_path / "pickled.npz")


def test_reset_returns_to_the_defaults():
    stream = Stream(7)
    defaults = np.full((NUM_CLASSES, F), 0.01, np.float32)
    clf = OnlineClassifier(default_weights=defaults)
    for _ in range(5):
        clf.update(*stream.frame(200)[:2])
    assert clf.confidence > 0 and clf.buffer_counts.sum() > 0
    assert not np.array_equal(clf.weights, defaults)
    clf.reset()
    np.testing.assert_array_equal(clf.weights, defaults)
    assert clf.confidence == 0.0 and clf.buffer_counts.sum() == 0 and clf.n_updates == 0


def test_nan_rows_are_dropped_and_counted_and_bad_batches_are_no_ops():
    stream = Stream(8)
    x, t, _ = stream.frame(100)
    x[3, 5] = np.nan
    x[7, 0] = np.inf
    t[10] = [0.0, 0.0, 0.0, 0.0, 0.0]  # no label
    t[11, 2] = -1.0
    w = np.ones(100, np.float32)
    w[20] = np.nan
    w[21] = 0.0
    clf = OnlineClassifier()
    st = clf.update(x, t, w)
    assert (st.n_input, st.n_dropped_nonfinite, st.n_dropped_target, st.n_dropped_weight) == (100, 2, 2, 2)
    assert st.n_samples == 94 and np.isfinite(st.loss)
    assert np.isfinite(clf.weights).all() and clf.buffer_counts.sum() == 94
    # NaN features predict NaN rows / class -1, the others are untouched
    p = clf.predict_proba(x[:8])
    assert np.isnan(p[3]).all() and np.isnan(p[7]).all() and np.isfinite(p[[0, 1, 2, 4, 5, 6]]).all()
    assert clf.predict(x[:8])[[3, 7]].tolist() == [-1, -1]
    # all rows bad, or none: nothing changes, and the stats say so
    before = clf.weights.copy()
    for bad in (np.full((5, F), np.nan, np.float32), np.zeros((0, F), np.float32)):
        st = clf.update(bad, np.full((len(bad), NUM_CLASSES), 0.2, np.float32))
        assert st.skipped and st.n_samples == 0 and st.reason and np.isnan(st.loss)
    np.testing.assert_array_equal(clf.weights, before)
    assert clf.n_updates == 1


def test_targets_are_normalised():
    stream = Stream(9)
    x, t, _ = stream.frame(100)
    a, b = OnlineClassifier(), OnlineClassifier()
    sa, sb = a.update(x, t), b.update(x, 3.0 * t)
    assert sa.loss == pytest.approx(sb.loss, rel=1e-6)
    np.testing.assert_allclose(a.weights, b.weights, rtol=1e-5, atol=1e-7)


def test_shapes_and_config_are_checked():
    clf = OnlineClassifier()
    with pytest.raises(InputError, match="features"):
        clf.update(np.zeros((4, 99), np.float32), np.zeros((4, 5), np.float32))
    with pytest.raises(InputError, match="targets"):
        clf.update(np.zeros((4, 100), np.float32), np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="weights"):
        clf.update(np.zeros((4, 100), np.float32), np.ones((4, 5), np.float32), np.ones(3))
    with pytest.raises(InputError, match="features"):
        clf.predict_proba(np.zeros(100))
    with pytest.raises(InputError, match="learning_rate"):
        ClassifierConfig(learning_rate=0.0)
    with pytest.raises(InputError, match="buffer_capacity"):
        ClassifierConfig(buffer_capacity=1.5)
    with pytest.raises(InputError, match="default_weights"):
        OnlineClassifier(default_weights=np.zeros((5, 10)))
    assert set(ClassifierConfig.describe()) >= {"learning_rate", "weight_decay", "buffer_capacity",
                                                "steps_per_frame"}


def test_small_feature_vectors_and_several_steps():
    rng = np.random.default_rng(0)
    cfg = ClassifierConfig(n_features=3, steps_per_frame=5, buffer_capacity=20, weight_decay=0.002)
    clf = OnlineClassifier(cfg)
    centres = np.eye(NUM_CLASSES, 3) * 3 + np.array([[0, 0, 0], [0, 0, 0], [0, 0, 3], [3, 3, 0], [-3, 0, -3]])
    for _ in range(30):
        y = rng.integers(0, NUM_CLASSES, 100)
        x = (centres[y] + rng.normal(0, 0.3, (100, 3))).astype(np.float32)
        st = clf.update(x, np.eye(NUM_CLASSES, dtype=np.float32)[y])
    assert st.steps == 5 and st.error_vs_targets < 0.05


def test_ring_buffers_keep_an_evenly_spaced_subset_per_class():
    from perception.terrain.ring_buffers import RingBuffers

    b = RingBuffers(NUM_CLASSES, 4, 2)
    n = 10
    x = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    t = np.zeros((NUM_CLASSES, n), np.float32)
    t[1] = 1.0  # every sample is class 1
    ones = np.ones(n, np.float32)
    b.push(x, t, ones, ones, np.zeros(n, np.float32))
    assert b.count.tolist() == [0, 4, 0, 0, 0] and b.total() == 4
    assert b.x[1, :, 0].tolist() == [0.0, 6.0, 12.0, 18.0]  # rows 0, 3, 6, 9
    fx, ft, fw, _, _ = b.flat()
    assert fx.shape == (NUM_CLASSES * 4, 2) and ft.shape == (NUM_CLASSES, NUM_CLASSES * 4) and fw.sum() == 4
    b.clear()
    assert b.total() == 0 and not b.x.any()


def test_bench_runs_and_reports_times(capsys):
    import json

    from perception.terrain.classifier_bench import main

    assert main(["--frame", "50", "--capacity", "20", "--repeats", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_frame"] == 50 and result["buffer_per_class"] == 20 and result["median_ms"] > 0
