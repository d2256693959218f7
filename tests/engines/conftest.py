"""Generic engine fixtures: tiny ONNX models written with onnx.helper and saved with their metadata.

`make_tiny_conv(...)` writes a 3->2 channel 3x3 convolution (padding 1) and returns a `TinyConv` that knows
its weights, so a test can compare an engine's output with `conv2d_reference` computed in numpy.
`qdq=True` writes the explicit-quantization (Q/DQ INT8) form of the same layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from perception.engines.metadata import ClassInfo, ModelMetadata, Normalization, TensorInfo
from perception.engines.model_file import save_model

OPSET = 17
IR_VERSION = 8  # readable by every onnxruntime the project supports (>= 1.17)


def conv2d_reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """NCHW 2-D convolution, stride 1, 'same' zero padding, in float64 numpy."""
    kh, kw = weight.shape[2:]
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))  # N C H W kh kw
    return np.einsum("nchwij,ocij->nohw", windows, weight.astype(np.float64)) + bias[None, :, None, None]


def quantize(x: np.ndarray, scale: float) -> np.ndarray:
    """ONNX QuantizeLinear to int8 with zero point 0 (round half to even, saturate)."""
    return np.clip(np.rint(x / scale), -128, 127).astype(np.int8)


@dataclass
class TinyConv:
    path: Path
    meta: ModelMetadata
    weight: np.ndarray  # (2, 3, 3, 3) float32, dequantized for a Q/DQ model
    bias: np.ndarray  # (2,) float32
    input_scale: float | None = None  # Q/DQ models quantize the input with this scale
    float_weight: np.ndarray | None = None  # the weights before quantization (Q/DQ models)

    @property
    def input_name(self) -> str:
        return self.meta.inputs[0].name

    @property
    def output_name(self) -> str:
        return self.meta.outputs[0].name

    def reference(self, x: np.ndarray) -> np.ndarray:
        """What the model computes, in float64 numpy (quantizing the input as a Q/DQ model does)."""
        if self.input_scale is not None:
            x = quantize(x, self.input_scale).astype(np.float64) * self.input_scale
        return conv2d_reference(x, self.weight, self.bias)

    def float_reference(self, x: np.ndarray) -> np.ndarray:
        """What the float model (unquantized weights and input) computes."""
        weight = self.float_weight if self.float_weight is not None else self.weight
        return conv2d_reference(x, weight, self.bias)


def tiny_conv_metadata(name: str = "tiny", task: str = "scene", size: int = 8, **decoder) -> ModelMetadata:
    return ModelMetadata(
        task=task, name=name,
        inputs=[TensorInfo("image", [1, 3, size, size], "float32", layout="NCHW", color="rgb",
                           normalization=Normalization())],
        outputs=[TensorInfo("logits", [1, 2, size, size], "float32", decoding="logits")],
        classes=[ClassInfo("road", (128, 64, 128)), ClassInfo("sky", (70, 130, 180))],
        decoder=dict(decoder),
    )


def tiny_conv_graph(size: int = 8, *, qdq: bool = False, seed: int = 0):
    """(onnx model, weight as the graph computes it, bias, input scale or None, float weight)."""
    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 0.5, (2, 3, 3, 3)).astype(np.float32)
    bias = np.array([0.25, -0.5], np.float32)
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, size, size])
    inits = [numpy_helper.from_array(bias, "bias")]
    nodes = []
    in_scale = None
    float_weight = weight
    if qdq:
        in_scale, w_scale = 1.0 / 64, float(np.abs(weight).max() / 127)
        w_q = quantize(weight, w_scale)
        weight = w_q.astype(np.float32) * np.float32(w_scale)
        inits += [numpy_helper.from_array(w_q, "w_q"), numpy_helper.from_array(np.float32(w_scale), "w_scale"),
                  numpy_helper.from_array(np.float32(in_scale), "x_scale"),
                  numpy_helper.from_array(np.int8(0), "zero")]
        nodes += [helper.make_node("QuantizeLinear", ["image", "x_scale", "zero"], ["x_q"]),
                  helper.make_node("DequantizeLinear", ["x_q", "x_scale", "zero"], ["x_dq"]),
                  helper.make_node("DequantizeLinear", ["w_q", "w_scale", "zero"], ["weight"])]
        conv_in = "x_dq"
    else:
        inits.append(numpy_helper.from_array(weight, "weight"))
        conv_in = "image"
    nodes.append(helper.make_node("Conv", [conv_in, "weight", "bias"], ["logits"], pads=[1, 1, 1, 1]))
    graph = helper.make_graph(nodes, "tiny_conv", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    return model, weight, bias, in_scale, float_weight


def write_tiny_conv(path: str | Path, *, name: str = "tiny", task: str = "scene", size: int = 8,
                    qdq: bool = False, metadata: bool = True, **decoder) -> TinyConv:
    """Write the tiny conv model to `path`; `metadata=False` writes the bare graph (no perception metadata)."""
    path = Path(path)
    model, weight, bias, in_scale, float_weight = tiny_conv_graph(size, qdq=qdq)
    meta = tiny_conv_metadata(name, task, size, **decoder)
    if metadata:
        save_model(model, meta, path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(path))
    return TinyConv(path, meta, weight, bias, in_scale, float_weight)


@pytest.fixture
def make_tiny_conv(tmp_path):
    """Factory: make_tiny_conv(filename="tiny.onnx", **options of write_tiny_conv) -> TinyConv."""

    def make(filename: str = "tiny.onnx", **options) -> TinyConv:
        return write_tiny_conv(tmp_path / filename, **options)

    return make


@pytest.fixture
def tiny_conv(make_tiny_conv) -> TinyConv:
    """The default tiny conv model (float, scene task, 1x3x8x8 -> 1x2x8x8)."""
    return make_tiny_conv()


@pytest.fixture
def engine_cache(tmp_path, monkeypatch) -> Path:
    """An empty plan cache folder, also set as $PERCEPTION_ENGINE_CACHE for the test."""
    folder = tmp_path / "engine-cache"
    folder.mkdir()
    monkeypatch.setenv("PERCEPTION_ENGINE_CACHE", str(folder))
    return folder
