"""A small, torch-free builder for the project's ConvNets as ONNX graphs (opset 17, static shapes, float32).

The shipped graphs are written from numpy weights with this builder, so they are byte-for-byte the same whatever
torch version (if any) is installed, and they use only operators, attributes and modes that TensorRT 10's ONNX
parser accepts (see `perception.engines.export.TENSORRT_OPS`). Every tensor's shape is tracked here, statically, so
a shape error is caught while building, not in the engine.

>>> import numpy as np
>>> g = GraphBuilder("demo")
>>> x = g.input("image", [1, 3, 8, 8])
>>> y = g.relu(g.conv(x, np.zeros((4, 3, 3, 3), np.float32), pads=(1, 1, 1, 1)))
>>> g.output(y, "features")
'features'
>>> g.shape("features")
[1, 4, 8, 8]
>>> model = g.build()
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
PRODUCER = "perception"  # marks a project model for `check_tensorrt_compatible` (strict rules)

# Resize settings TensorRT's parser accepts (onnx-tensorrt docs/operators.md, "Resize" row).
RESIZE_MODES = ("nearest", "linear")
RESIZE_COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners")
RESIZE_NEAREST_MODES = ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")


class GraphBuilder:
    """Append nodes to one static-shape float32 graph; each method returns the name of its output tensor."""

    def __init__(self, name: str, *, opset: int = OPSET):
        self.name = name
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._shapes: dict[str, list[int]] = {}
        self._counts: dict[str, int] = {}

    # --- bookkeeping --------------------------------------------------------------------------------
    def shape(self, tensor: str) -> list[int]:
        """The static shape of a tensor built so far."""
        return list(self._shapes[tensor])

    def _name(self, prefix: str) -> str:
        n = self._counts.get(prefix, 0)
        self._counts[prefix] = n + 1
        return f"{prefix}_{n}"

    def _set(self, tensor: str, shape: Sequence[int]) -> str:
        shape = [int(d) for d in shape]
        if any(d <= 0 for d in shape):
            raise ValueError(f"{tensor}: shape {shape} has a non-positive dimension")
        self._shapes[tensor] = shape
        return tensor

    def _node(self, op: str, inputs: Sequence[str], out_shape: Sequence[int], name: str | None = None, **attrs) -> str:
        node_name = name or self._name(op.lower())
        out = f"{node_name}_out"
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=node_name, **attrs))
        return self._set(out, out_shape)

    def constant(self, value: np.ndarray, prefix: str = "const", *, name: str | None = None) -> str:
        """An initializer (named `name`, else `<prefix>_<n>`); float arrays are stored as float32, integers as int64."""
        value = np.asarray(value)
        value = value.astype(np.float32) if value.dtype.kind == "f" else value.astype(np.int64)
        name = name or self._name(prefix)
        if name in self._shapes:
            raise ValueError(f"tensor name '{name}' is already used")
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        self._shapes[name] = list(value.shape)
        return name

    def input(self, name: str, shape: Sequence[int]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [int(d) for d in shape]))
        return self._set(name, shape)

    def output(self, tensor: str, name: str) -> str:
        """Expose `tensor` as a graph output called `name` (an Identity-free rename of the last node's output)."""
        if not any(tensor in node.output for node in self.nodes):
            raise ValueError(f"'{tensor}' is not computed by a node (graph inputs and constants cannot be outputs)")
        if name in self._shapes:
            raise ValueError(f"tensor name '{name}' is already used")
        for node in self.nodes:
            for i, out in enumerate(node.output):
                if out == tensor:
                    node.output[i] = name
            for i, inp in enumerate(node.input):
                if inp == tensor:
                    node.input[i] = name
        self._shapes[name] = self._shapes.pop(tensor)
        self.outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, self._shapes[name]))
        return name

    # --- layers -------------------------------------------------------------------------------------
    def conv(
        self,
        x: str,
        weight: np.ndarray,
        bias: np.ndarray | None = None,
        *,
        strides: Sequence[int] = (1, 1),
        pads: Sequence[int] = (0, 0, 0, 0),
        dilations: Sequence[int] = (1, 1),
        group: int = 1,
        name: str | None = None,
    ) -> str:
        """2-D convolution (cross-correlation, as in ONNX). weight: (out, in/group, kh, kw); pads: (top, left, bottom, right)."""
        weight = np.asarray(weight, dtype=np.float32)
        n, c, h, w = self._shapes[x]
        if weight.ndim != 4 or weight.shape[1] * group != c or weight.shape[0] % group:
            raise ValueError(f"conv weight {weight.shape} does not fit input {self._shapes[x]} with group={group}")
        kh, kw = weight.shape[2:]
        t, l, b, r = pads
        sh, sw = strides
        dh, dw = dilations
        oh = (h + t + b - dh * (kh - 1) - 1) // sh + 1
        ow = (w + l + r - dw * (kw - 1) - 1) // sw + 1
        name = name or self._name("conv")
        inputs = [x, self.constant(weight, name=f"{name}.weight")]
        if bias is not None:
            bias = np.asarray(bias, dtype=np.float32).reshape(-1)
            if bias.shape[0] != weight.shape[0]:
                raise ValueError(f"conv bias has {bias.shape[0]} values for {weight.shape[0]} filters")
            inputs.append(self.constant(bias, name=f"{name}.bias"))
        return self._node(
            "Conv", inputs, [n, weight.shape[0], oh, ow], name,
            kernel_shape=[int(kh), int(kw)], strides=[int(s) for s in strides], pads=[int(p) for p in (t, l, b, r)],
            dilations=[int(d) for d in dilations], group=int(group),
        )

    def tanh(self, x: str, name: str | None = None) -> str:
        return self._node("Tanh", [x], self._shapes[x], name)

    def relu(self, x: str, name: str | None = None) -> str:
        return self._node("Relu", [x], self._shapes[x], name)

    def max_pool(
        self,
        x: str,
        kernel: Sequence[int],
        strides: Sequence[int] | None = None,
        pads: Sequence[int] = (0, 0, 0, 0),
        name: str | None = None,
    ) -> str:
        """Max pooling over (rows, cols); strides default to the kernel (non-overlapping); floor mode."""
        strides = tuple(kernel) if strides is None else tuple(strides)
        n, c, h, w = self._shapes[x]
        t, l, b, r = pads
        oh = (h + t + b - kernel[0]) // strides[0] + 1
        ow = (w + l + r - kernel[1]) // strides[1] + 1
        return self._node(
            "MaxPool", [x], [n, c, oh, ow], name,
            kernel_shape=[int(k) for k in kernel], strides=[int(s) for s in strides], pads=[int(p) for p in pads],
        )

    def add(self, a: str, b: str, name: str | None = None) -> str:
        shape = np.broadcast_shapes(tuple(self._shapes[a]), tuple(self._shapes[b]))
        return self._node("Add", [a, b], list(shape), name)

    def concat(self, xs: Sequence[str], axis: int = 1, name: str | None = None) -> str:
        shapes = [self._shapes[x] for x in xs]
        rank = len(shapes[0])
        axis = axis % rank
        for s in shapes[1:]:
            if len(s) != rank or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != axis):
                raise ValueError(f"concat on axis {axis}: shapes {shapes} differ off that axis")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return self._node("Concat", list(xs), out, name, axis=axis)

    def resize(
        self,
        x: str,
        scales: Sequence[float] | None = None,
        sizes: Sequence[int] | None = None,
        *,
        mode: str = "nearest",
        coordinate_transformation_mode: str = "asymmetric",
        nearest_mode: str = "floor",
        name: str | None = None,
    ) -> str:
        """Resize an NCHW tensor by `scales` (per axis, whole output sizes only) or to `sizes` (H, W or all axes).

        Only TensorRT-supported settings are accepted: modes nearest/linear, the coordinate modes in
        RESIZE_COORDINATE_MODES and the nearest modes in RESIZE_NEAREST_MODES.
        """
        if mode not in RESIZE_MODES:
            raise ValueError(f"resize mode '{mode}' is not supported by TensorRT; use one of {RESIZE_MODES}")
        if coordinate_transformation_mode not in RESIZE_COORDINATE_MODES:
            raise ValueError(f"coordinate mode '{coordinate_transformation_mode}' is not supported by TensorRT")
        if nearest_mode not in RESIZE_NEAREST_MODES:
            raise ValueError(f"nearest mode '{nearest_mode}' is not supported by TensorRT")
        shape = self._shapes[x]
        if (scales is None) == (sizes is None):
            raise ValueError("resize takes exactly one of scales or sizes")
        attrs = dict(mode=mode, coordinate_transformation_mode=coordinate_transformation_mode)
        if mode == "nearest":
            attrs["nearest_mode"] = nearest_mode
        if scales is not None:
            scales = [1.0] * (len(shape) - len(scales)) + [float(s) for s in scales]
            out = [d * s for d, s in zip(shape, scales)]
            if any(abs(o - round(o)) > 1e-6 for o in out):
                raise ValueError(f"resize scales {scales} give a fractional output shape from {shape}")
            out = [int(round(o)) for o in out]
            inputs = [x, "", self.constant(np.asarray(scales, np.float32), "scales")]
        else:
            out = list(shape[: len(shape) - len(sizes)]) + [int(s) for s in sizes]
            inputs = [x, "", "", self.constant(np.asarray(out, np.int64), "sizes")]
        return self._node("Resize", inputs, out, name, **attrs)

    def softmax(self, x: str, axis: int = 1, name: str | None = None) -> str:
        return self._node("Softmax", [x], self._shapes[x], name, axis=int(axis))

    def transpose(self, x: str, perm: Sequence[int], name: str | None = None) -> str:
        shape = self._shapes[x]
        if sorted(perm) != list(range(len(shape))):
            raise ValueError(f"transpose perm {list(perm)} is not a permutation of {len(shape)} axes")
        return self._node("Transpose", [x], [shape[p] for p in perm], name, perm=[int(p) for p in perm])

    def reshape(self, x: str, shape: Sequence[int], name: str | None = None) -> str:
        """Reshape to a static shape; one -1 is resolved here, so the stored shape is fully static."""
        total = int(np.prod(self._shapes[x]))
        shape = [int(d) for d in shape]
        if shape.count(-1) > 1 or any(d == 0 or d < -1 for d in shape):
            raise ValueError(f"reshape target {shape}: use positive sizes and at most one -1")
        if -1 in shape:
            known = int(np.prod([d for d in shape if d != -1]))
            if total % known:
                raise ValueError(f"cannot reshape {self._shapes[x]} to {shape}")
            shape[shape.index(-1)] = total // known
        if int(np.prod(shape)) != total:
            raise ValueError(f"cannot reshape {self._shapes[x]} to {shape}")
        return self._node("Reshape", [x, self.constant(np.asarray(shape, np.int64), "shape")], shape, name)

    # --- result -------------------------------------------------------------------------------------
    def build(self, doc: str = "") -> onnx.ModelProto:
        """The finished model, checked by onnx (with full shape inference against the shapes tracked here)."""
        if not self.inputs or not self.outputs:
            raise ValueError("a graph needs at least one input and one output")
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers, doc_string=doc)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", self.opset)], producer_name=PRODUCER, producer_version="1"
        )
        # An IR version every onnxruntime >= 1.17 and TensorRT 10 reads (onnx may default to a newer one).
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        for out in inferred.graph.output:
            dims = [d.dim_value for d in out.type.tensor_type.shape.dim]
            if dims != self._shapes[out.name]:
                raise ValueError(f"output {out.name}: onnx infers {dims}, the builder tracked {self._shapes[out.name]}")
        return model
