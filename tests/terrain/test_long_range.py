"""The long-range stage on synthetic frames: classes where the ground is, learning from the stereo labels."""
import numpy as np
import pytest

from perception.errors import InputError, ModelError
from perception.sim import SimConfig, SimWorld
from perception.stereo.near_range import NearRangeLabeller
from perception.terrain.defaults import ClassifierDefaults, load_defaults, model_digest, save_defaults
from perception.terrain.classifier import ClassifierConfig
from perception.terrain.long_range import LongRange, LongRangeConfig, classify


@pytest.fixture(scope="module")
def frame_and_near():
    world = SimWorld(SimConfig(seed=3, frames=4, width=320, height=240, tree_density=3.0))
    frame = world.render(1)
    return frame, NearRangeLabeller().process(frame)


@pytest.fixture(scope="module")
def long_range():
    lr = LongRange(LongRangeConfig(threads=1))
    yield lr
    lr.close()


def test_classes_cover_the_ground_and_not_the_sky(long_range, frame_and_near):
    frame, near = frame_and_near
    res = long_range.process(frame.left, frame.left_info, near.ground, near.labels)
    assert res.ok and res.classes.shape == frame.left.shape[:2] and res.classes.max() <= 5
    sky = ~np.isfinite(frame.truth["depth"])
    ground = (frame.truth["terrain_class"] <= 5) & (frame.truth["depth"] > 2.5)  # bands start at 2 m
    assert (res.classes[ground] > 0).mean() > 0.8
    assert (res.classes[sky] > 0).mean() < 0.2  # only the band reaching above the horizon
    trav = res.traversability[res.classes > 0]
    assert np.isfinite(trav).all() and (trav >= 0).all() and (trav <= 1).all()
    assert res.n_trained > 0 and np.isfinite(res.err_vs_stereo)


def test_repeated_frames_are_learned(frame_and_near):
    frame, near = frame_and_near
    lr = LongRange(LongRangeConfig(threads=1), classifier=ClassifierConfig(weight_decay=0.002))
    ff = lr.observe(frame.left, frame.left_info, near.ground)

    def kl(res):  # KL(stereo || predicted before the update), mean over the trained windows
        t, p = res.near_targets, np.clip(res.predicted_before, 1e-9, 1)
        return float(np.mean(np.sum(np.where(t > 0, t * np.log(np.clip(t, 1e-9, 1) / p), 0), 1)))

    losses = [kl(classify(ff, near.labels, lr.classifier)) for _ in range(8)]
    lr.close()
    assert losses[-1] < 0.7 * losses[0], losses


def test_a_frame_without_ground_is_reported_not_raised(long_range, frame_and_near):
    frame, _ = frame_and_near
    res = long_range.process(frame.left, frame.left_info, None)
    assert not res.ok and "no ground" in res.reason


def test_defaults_round_trip_and_refuse_another_net(tmp_path, long_range):
    path = tmp_path / "d.npz"
    w = np.arange(500, dtype=np.float32).reshape(5, 100) / 500
    save_defaults(path, ClassifierDefaults(w, np.zeros(5, np.float32), model_digest(long_range.engine.path), "test"))
    d = load_defaults(path, long_range.engine.path)
    np.testing.assert_array_equal(d.weights, w)
    other = tmp_path / "other.onnx"
    other.write_bytes(long_range.engine.path.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="train classifier"):
        load_defaults(path, other)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError):
        load_defaults(tmp_path / "bad.npz")


def test_a_feature_net_of_another_width_is_refused(tmp_path):
    from perception.terrain.feature_net import write_feature_net

    path = write_feature_net(tmp_path / "narrow.onnx", width=200)
    with pytest.raises(InputError, match="484"):
        LongRange(LongRangeConfig(threads=1), model=path)
