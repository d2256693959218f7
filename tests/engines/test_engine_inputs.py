"""infer() checks its feeds at the boundary: InputError naming the tensor, the expected and the got."""
from __future__ import annotations

import numpy as np
import pytest

from perception.engines import open_engine
from perception.engines.base import TensorSpec, check_feeds
from perception.errors import InputError

GOOD = np.zeros((1, 3, 8, 8), np.float32)


def _with(value):
    x = GOOD.copy()
    x[0, 1, 2, 3] = value
    return x


BAD_FEEDS = {
    "missing input": ({}, ["missing ['image']", "inputs are ['image']"]),
    "wrong name": ({"img": GOOD}, ["missing ['image']", "unexpected ['img']"]),
    "extra input": ({"image": GOOD, "depth": GOOD}, ["unexpected ['depth']"]),
    "wrong shape": ({"image": np.zeros((1, 3, 4, 8), np.float32)}, ["'image'", "[1, 3, 4, 8]", "[1, 3, 8, 8]", "resize"]),
    "wrong rank": ({"image": np.zeros((3, 8, 8), np.float32)}, ["'image'", "[3, 8, 8]", "[1, 3, 8, 8]"]),
    "wrong dtype": ({"image": GOOD.astype(np.float64)}, ["'image'", "float64", "float32", "astype"]),
    "uint8 image": ({"image": GOOD.astype(np.uint8)}, ["'image'", "uint8", "normalisation"]),
    "NaN": ({"image": _with(np.nan)}, ["'image'", "1 NaN/inf", "finite"]),
    "inf": ({"image": _with(-np.inf)}, ["'image'", "NaN/inf"]),
    "a list": ({"image": GOOD.tolist()}, ["'image'", "list", "numpy array"]),
    "not a dict": ([GOOD], ["dict"]),
}


@pytest.fixture
def engine(tiny_conv):
    with open_engine(tiny_conv.path, backend="onnxruntime") as eng:
        yield eng


@pytest.mark.parametrize("case", list(BAD_FEEDS))
def test_bad_feeds_are_input_errors_that_say_what_and_how(engine, case):
    feeds, fragments = BAD_FEEDS[case]
    with pytest.raises(InputError) as info:
        engine.infer(feeds)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, f"{case}: {fragment!r} not in {text!r}"
    assert info.value.hint, "every input error says what to do"


def test_good_feed_passes_and_non_contiguous_input_is_accepted(engine):
    x = np.random.default_rng(0).uniform(0, 1, (1, 8, 8, 3)).astype(np.float32).transpose(0, 3, 1, 2)
    assert not x.flags.c_contiguous
    out = engine.infer({"image": x})["logits"]
    np.testing.assert_allclose(out, engine.infer({"image": np.ascontiguousarray(x)})["logits"])


def test_free_dimensions_accept_any_size_but_not_another_rank():
    spec = TensorSpec("points", (1, -1, 3), "float32")
    assert spec.accepts_shape((1, 100, 3)) and spec.accepts_shape((1, 1, 3))
    assert not spec.accepts_shape((1, 100, 4)) and not spec.accepts_shape((100, 3))
    checked = check_feeds([spec], {"points": np.zeros((1, 7, 3), np.float32)})
    assert checked["points"].shape == (1, 7, 3)


def test_integer_inputs_are_not_checked_for_nan():
    spec = TensorSpec("ids", (4,), "int64")
    assert check_feeds([spec], {"ids": np.array([1, 2, 3, 4])})["ids"].dtype == np.int64
