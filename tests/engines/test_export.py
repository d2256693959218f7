"""The ONNX graph builder against numpy, the TensorRT compatibility check, the feature net, and the torch exporter."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from perception.engines.export import check_tensorrt_compatible
from perception.engines.graph import GraphBuilder
from perception.engines.metadata import ModelMetadata, Normalization, TensorInfo
from perception.engines.model_file import embedded_metadata, load_model
from perception.errors import ModelError
from perception.terrain import feature_net
from tests.conftest import REPO

SHIPPED = REPO / "engines" / "terrain_features.onnx"


def run(model: onnx.ModelProto, **feeds: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


# --- numpy references ---------------------------------------------------------------------------------------
def conv_ref(x, w, b, strides=(1, 1), pads=(0, 0, 0, 0)):
    t, l, bo, r = pads
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (t, bo), (l, r)))
    win = np.lib.stride_tricks.sliding_window_view(x, w.shape[2:], axis=(2, 3))[:, :, :: strides[0], :: strides[1]]
    return np.einsum("nchwij,ocij->nohw", win, w.astype(np.float64)) + b[None, :, None, None]


def maxpool_ref(x, k, s):
    win = np.lib.stride_tricks.sliding_window_view(x, k, axis=(2, 3))[:, :, :: s[0], :: s[1]]
    return win.max(axis=(4, 5))


def linear_half_pixel_ref(x, factor, axis):
    """1-D linear resize with ONNX half_pixel coordinates and edge clamping."""
    n = x.shape[axis]
    src = np.clip((np.arange(n * factor) + 0.5) / factor - 0.5, 0, n - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    frac = src - i0
    shape = [1] * x.ndim
    shape[axis] = -1
    return np.take(x, i0, axis) * (1 - frac.reshape(shape)) + np.take(x, i1, axis) * frac.reshape(shape)


# --- graph builder --------------------------------------------------------------------------------------------
def test_conv_tanh_maxpool_match_numpy():
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((5, 3, 3, 4)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    g = GraphBuilder("t")
    x = g.input("x", [1, 3, 11, 14])
    y = g.max_pool(g.tanh(g.conv(x, w, b, strides=(2, 1), pads=(1, 2, 0, 1))), (2, 3), strides=(1, 2))
    g.output(y, "y")
    data = rng.standard_normal((1, 3, 11, 14)).astype(np.float32)
    (got,) = run(g.build(), x=data)
    want = maxpool_ref(np.tanh(conv_ref(data, w, b, (2, 1), (1, 2, 0, 1))), (2, 3), (1, 2))
    assert got.shape == want.shape == tuple(g.shape("y"))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_relu_add_concat_softmax_transpose_reshape_match_numpy():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((2, 2, 1, 1)).astype(np.float32)
    g = GraphBuilder("t")
    a, b = g.input("a", [1, 2, 3, 4]), g.input("b", [1, 2, 3, 4])
    s = g.add(g.relu(a), g.conv(b, w))
    c = g.concat([s, a], axis=1)
    p = g.softmax(c, axis=1)
    t = g.transpose(p, [0, 2, 3, 1])
    r = g.reshape(t, [1, -1, 4])
    g.output(r, "out")
    assert g.shape("out") == [1, 12, 4]
    da, db = rng.standard_normal((2, 1, 2, 3, 4)).astype(np.float32)
    (got,) = run(g.build(), a=da, b=db)
    cat = np.concatenate([np.maximum(da, 0) + conv_ref(db, w, np.zeros(2)), da], axis=1)
    e = np.exp(cat - cat.max(1, keepdims=True))
    want = (e / e.sum(1, keepdims=True)).transpose(0, 2, 3, 1).reshape(1, 12, 4)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_resize_nearest_and_linear_match_numpy():
    rng = np.random.default_rng(2)
    g = GraphBuilder("t")
    x = g.input("x", [1, 2, 3, 5])
    g.output(g.resize(x, scales=[2, 3]), "near")
    g.output(g.resize(x, sizes=[6, 10], mode="linear", coordinate_transformation_mode="half_pixel"), "lin")
    data = rng.standard_normal((1, 2, 3, 5)).astype(np.float32)
    near, lin = run(g.build(), x=data)
    np.testing.assert_array_equal(near, data.repeat(2, axis=2).repeat(3, axis=3))
    want = linear_half_pixel_ref(linear_half_pixel_ref(data.astype(np.float64), 2, 2), 2, 3)
    np.testing.assert_allclose(lin, want, atol=1e-6)


def test_builder_refuses_what_tensorrt_or_static_shapes_refuse():
    g = GraphBuilder("t")
    x = g.input("x", [1, 2, 3, 5])
    with pytest.raises(ValueError, match="not supported by TensorRT"):
        g.resize(x, scales=[2, 2], mode="cubic")
    with pytest.raises(ValueError, match="fractional"):
        g.resize(x, scales=[1.5, 1.5])
    with pytest.raises(ValueError, match="cannot reshape"):
        g.reshape(x, [1, -1, 7])
    with pytest.raises(ValueError, match="does not fit"):
        g.conv(x, np.zeros((4, 3, 3, 3), np.float32))


# --- the terrain feature net ----------------------------------------------------------------------------------
def test_feature_net_window_is_12x25_with_stride_1x4():
    """One input pixel reaches exactly the outputs whose 3@12x25 window covers it (positive weights: no masking)."""
    rng = np.random.default_rng(3)
    weights = {
        "conv1.weight": rng.uniform(0.01, 0.1, feature_net.CONV1).astype(np.float32),
        "conv1.bias": np.zeros(20, np.float32),
        "conv2.weight": rng.uniform(0.01, 0.1, feature_net.CONV2).astype(np.float32),
        "conv2.bias": np.zeros(100, np.float32),
    }
    model = feature_net.build_feature_net(weights, width=64)
    assert feature_net.output_shape(64) == [1, 100, 25, 10]
    base = np.zeros((1, 3, 36, 64), np.float32)
    r0, c0 = 20, 37
    hit = base.copy()
    hit[0, 1, r0, c0] = 50.0
    (y0,) = run(model, yuv_band=base)
    (y1,) = run(model, yuv_band=hit)
    changed = np.abs(y1 - y0).max(axis=(0, 1)) > 0
    rows, cols = np.arange(25)[:, None], np.arange(10)[None, :]
    expected = (rows <= r0) & (r0 <= rows + 11) & (4 * cols <= c0) & (c0 <= 4 * cols + 24)
    np.testing.assert_array_equal(changed, expected)


def test_shipped_feature_net_is_the_builders_graph_with_trained_weights_and_says_so():
    from perception.terrain.defaults import load_defaults
    from perception.terrain.feature_finetune import weights_of

    shipped = onnx.load(str(SHIPPED))
    meta = load_model(SHIPPED, task="terrain_features").metadata
    built = feature_net.build_feature_net(weights_of(SHIPPED), trained_on=meta.trained_on,
                                          training=meta.decoder["training"])
    assert {t.name: numpy_helper.to_array(t).tobytes() for t in shipped.graph.initializer} == {
        t.name: numpy_helper.to_array(t).tobytes() for t in built.graph.initializer
    }
    assert [n.op_type for n in shipped.graph.node] == [n.op_type for n in built.graph.node]
    assert meta == embedded_metadata(built, subject="built")
    assert meta.inputs[0].shape == [1, 3, 36, 484] and meta.inputs[0].color == "yuv"
    assert meta.outputs[0].shape == [1, 100, 25, 115] and meta.outputs[0].decoding == "features"
    assert "NOT TRAINED" not in meta.trained_on and "fine-tuned" in meta.trained_on
    assert SHIPPED.stat().st_size < 400_000
    # the classifier defaults shipped beside it were fitted on this very net
    load_defaults(SHIPPED.parent / "terrain_classifier_defaults.npz", SHIPPED)


def test_feature_net_runs_on_a_preprocessed_band():
    from perception.terrain.preprocess import band_strips

    rng = np.random.default_rng(4)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    strips = band_strips(frame, count=3)
    assert len(strips) == 3 and all(s.shape == (1, 3, 36, 484) and s.dtype == np.float32 for s in strips)
    (features,) = run(onnx.load(str(SHIPPED)), yuv_band=strips[0])
    assert features.shape == (1, 100, 25, 115) and np.all(np.abs(features) <= 1 + 1e-6) and features.std() > 0.05


# --- TensorRT compatibility check ------------------------------------------------------------------------------
def _tiny(op: str = "Relu", *, opset: int = 17, dims=(1, 3, 4, 4), producer: str = "perception", extra=None, **attrs):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node(op, ["x"], ["y"], name="the_node", **attrs)]
    inits = []
    if extra:
        nodes, inits = extra
    graph = helper.make_graph(nodes, "tiny", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name=producer)
    model.ir_version = 8
    return model


def test_shipped_model_passes_the_tensorrt_check():
    check_tensorrt_compatible(SHIPPED)
    check_tensorrt_compatible(SHIPPED, project=True)


def test_unsupported_op_fails_naming_node_op_and_file(tmp_path):
    path = tmp_path / "bad.onnx"
    onnx.save(_tiny("Hardmax"), str(path))
    with pytest.raises(ModelError) as err:
        check_tensorrt_compatible(path)
    text = str(err.value)
    assert "the_node" in text and "Hardmax" in text and str(path) in text


def test_custom_domain_op_fails():
    model = _tiny(extra=([helper.make_node("FusedConv", ["x"], ["y"], name="fc", domain="com.microsoft")], []))
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(ModelError, match="custom domain 'com.microsoft'"):
        check_tensorrt_compatible(model)
    check_tensorrt_compatible(model, extra_ops=["FusedConv"])  # a plugin provides it


def test_opset_16_fails_for_a_project_model_but_not_a_foreign_one():
    with pytest.raises(ModelError, match="opset 16"):
        check_tensorrt_compatible(_tiny(opset=16))
    check_tensorrt_compatible(_tiny(opset=16, producer="pytorch"))
    with pytest.raises(ModelError, match="outside the range"):
        check_tensorrt_compatible(_tiny(opset=16, producer="pytorch"), opset_range=(17, 20))


def test_symbolic_dim_fails_for_a_project_model():
    with pytest.raises(ModelError, match="symbolic") as err:
        check_tensorrt_compatible(_tiny(dims=("batch", 3, 4, 4)))
    assert "'x'" in str(err.value)
    check_tensorrt_compatible(_tiny(dims=("batch", 3, 4, 4)), project=False)


def test_double_initializer_fails():
    bias = numpy_helper.from_array(np.zeros((1, 3, 1, 1), np.float64), "bias64")
    model = _tiny(extra=([helper.make_node("Add", ["x", "bias64"], ["y"], name="add64")], [bias]))
    with pytest.raises(ModelError, match="bias64.*DOUBLE"):
        check_tensorrt_compatible(model, project=False)


def test_qdq_rules_zero_point_and_int32_bias():
    def qdq(zero_point: np.ndarray, bias_dtype=None):
        inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"), numpy_helper.from_array(zero_point, "zp")]
        nodes = [
            helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="q_node"),
            helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="dq_node"),
        ]
        if bias_dtype is not None:
            inits.append(numpy_helper.from_array(np.zeros(3, bias_dtype), "b_q"))
            nodes.append(helper.make_node("DequantizeLinear", ["b_q", "s"], ["b"], name="bias_dq"))
        return _tiny(extra=(nodes, inits))

    check_tensorrt_compatible(qdq(np.array(0, np.int8)))
    with pytest.raises(ModelError, match="q_node.*zero point is not 0"):
        check_tensorrt_compatible(qdq(np.array(3, np.int8)))
    with pytest.raises(ModelError, match="zero point is UINT8"):
        check_tensorrt_compatible(qdq(np.array(128, np.uint8)))
    with pytest.raises(ModelError, match="bias_dq.*INT32"):
        check_tensorrt_compatible(qdq(np.array(0, np.int8), bias_dtype=np.int32))


def test_resize_cubic_fails():
    roi = ""
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    node = helper.make_node("Resize", ["x", roi, "scales"], ["y"], name="up", mode="cubic")
    with pytest.raises(ModelError, match="up.*Resize.*cubic"):
        check_tensorrt_compatible(_tiny(extra=([node], [scales])))


# --- torch export -----------------------------------------------------------------------------------------------
def test_export_torch_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    from perception.engines.export import export_torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Tanh(), torch.nn.MaxPool2d((1, 4)),
        torch.nn.Conv2d(8, 4, (2, 3)), torch.nn.ReLU(),
    )
    meta = ModelMetadata(
        task="generic", name="tiny_torch",
        inputs=[TensorInfo("image", [1, 3, 8, 16], color="rgb", normalization=Normalization())],
        outputs=[TensorInfo("out", [1, 4, 7, 2])],
    )
    example = torch.rand(1, 3, 8, 16)
    path = export_torch(module, example, tmp_path / "tiny.onnx", meta)
    loaded = load_model(path)
    assert loaded.metadata == meta and loaded.opset == 17
    check_tensorrt_compatible(path, project=True)
    x = np.random.default_rng(5).random((1, 3, 8, 16), dtype=np.float32)
    (got,) = run(onnx.load(str(path)), image=x)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(ModelError, match="static shapes"):
        export_torch(module, torch.rand(1, 3, 8, 20), tmp_path / "bad.onnx", meta)
