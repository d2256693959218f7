"""SceneParser: masks at the input resolution for any size, colours and confidence, header carried, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from perception.errors import InputError, ModelError
from perception.frame import Header


@pytest.fixture(scope="module")
def parser(colour_run):
    from perception.scene.parser import SceneParser

    _, run, _ = colour_run
    with SceneParser(run / "model.onnx", backend="onnxruntime", threads=1) as p:
        yield p


@pytest.mark.parametrize("shape", [(37, 53, 3), (48, 64, 3), (361, 479, 3), (101, 99), (7, 5, 4)])
def test_mask_is_at_the_input_resolution_for_odd_sizes(parser, shape):
    image = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    header = Header(123_456_789, "camera_left")
    result = parser.parse(image, header)
    h, w = shape[:2]
    assert result.class_mask.shape == (h, w) and result.class_mask.dtype == np.uint8
    assert result.color_mask.shape == (h, w, 3) and result.confidence.shape == (h, w)
    assert result.confidence.dtype == np.float32
    assert 0.0 < result.confidence.min() and result.confidence.max() <= 1.0 + 1e-6
    assert result.class_mask.max() < len(result.class_names) == 3
    lut = np.array([c[::-1] for c in result.colors], np.uint8)  # RGB -> BGR
    assert np.array_equal(result.color_mask, lut[result.class_mask])
    assert result.stamp_ns == 123_456_789 and result.frame_id == "camera_left" and result.ms > 0


def test_upsampled_mask_follows_the_scene_not_the_network_grid(parser):
    from tests.scene.conftest import make_scene
    import cv2

    img, lab = make_scene(np.random.default_rng(5))
    big = cv2.resize(img, (317, 239), interpolation=cv2.INTER_LINEAR)
    truth = cv2.resize(lab, (317, 239), interpolation=cv2.INTER_NEAREST)
    result = parser.parse(big)
    valid = truth != 255
    assert (result.class_mask[valid] == truth[valid]).mean() > 0.8


def test_bad_inputs_are_refused_by_name(parser):
    with pytest.raises(InputError, match="dtype"):
        parser.parse(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(InputError, match="shape"):
        parser.parse(np.zeros((10, 10, 2), np.uint8))


def test_a_model_for_another_stage_is_refused(tmp_path):
    from perception.scene.parser import SceneParser

    with pytest.raises(ModelError, match="not found"):
        SceneParser(tmp_path / "missing.onnx")


def test_the_shipped_default_model_loads_and_says_what_it_was_trained_on():
    from perception.scene.parser import SceneParser, default_model_path

    try:
        path = default_model_path()
    except ModelError as err:
        pytest.skip(str(err))
    with SceneParser(backend="onnxruntime", threads=1) as p:
        meta = p.engine.metadata
        assert p.engine.path == path
        assert p.class_names[:4] == ["Sky", "Building", "Pole", "Road"] and len(p.class_names) == 11
        assert "CamVid" in meta.trained_on and "test" in meta.trained_on and "research" in meta.license
        result = p.parse(np.zeros((183, 241, 3), np.uint8))
        assert result.class_mask.shape == (183, 241)
    assert path.stat().st_size < 5 * 2**20


def test_superpixel_vote_makes_segments_uniform():
    pytest.importorskip("skimage")
    from perception.scene.superpixels import majority_vote

    segs = np.repeat(np.arange(4), 25).reshape(10, 10).astype(np.int32)
    mask = np.zeros((10, 10), np.uint8)
    mask[:2] = 1
    mask[0, 0] = 2
    voted = majority_vote(mask, segs, 3)
    assert voted[:2].tolist() == [[1] * 10] * 2 and voted[2].tolist() == [1] * 5 + [0] * 5 and voted[3:].max() == 0


def test_flip_averaging_is_mirror_symmetric(colour_run):
    from perception.scene.parser import SceneParser

    _, run, _ = colour_run
    image = np.random.default_rng(3).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    with SceneParser(run / "model.onnx", backend="onnxruntime", threads=1, flip=True) as p:
        a, b = p.parse(image), p.parse(np.ascontiguousarray(image[:, ::-1]))
    assert np.allclose(a.confidence, b.confidence[:, ::-1], atol=1e-5)
    assert (a.class_mask == b.class_mask[:, ::-1]).mean() > 0.999
