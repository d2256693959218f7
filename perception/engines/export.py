"""TensorRT-friendly ONNX: the compatibility check every shipped model passes, and the torch exporter.

`check_tensorrt_compatible` is a static check of an ONNX graph against what TensorRT 10's ONNX parser accepts,
so a model that would fail `perception engines build` on a robot fails here first, on any machine, naming the node.
It cannot prove a model builds (only TensorRT can), but every rule below is one the parser documents.

Project models (written by perception's tools: `producer_name` starts with "perception") get the strict rules:
opset exactly 17, static input shapes, float32 graph I/O and float32 / int8-Q/DQ / int64 / int32 initializers.
Foreign models get the parser's own limits: an opset range (a parameter) and symbolic dims allowed.
"""
from __future__ import annotations

import inspect
import logging
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from perception.engines.graph import OPSET, PRODUCER, RESIZE_COORDINATE_MODES, RESIZE_MODES, RESIZE_NEAREST_MODES
from perception.engines.metadata import ModelMetadata
from perception.engines.model_file import read_onnx, save_model
from perception.errors import ModelError

log = logging.getLogger(__name__)

# Operators TensorRT's ONNX parser imports (default ONNX domain), transcribed from the "Supported" = Y rows of the
# operator support matrix in onnx/onnx-tensorrt, docs/operators.md (the table for opsets up to 17, commit 6d0ab7b),
# plus LayerNormalization and GroupNormalization, which the TensorRT 10.0 edition of that page lists as supported
# (that edition: "TensorRT 10.0 supports operators in the inclusive range of opset 9 to opset 20").
# QuantizeLinear / DequantizeLinear are what ONNX Runtime's QDQ quantization emits; TensorRT requires their zero
# points to be 0 (symmetric INT8). Ops marked N there (e.g. NonZero before 8.5, Hardmax, Unique, QLinearConv,
# ConvInteger, MatMulInteger, DynamicQuantizeLinear, the Sequence* and String* ops) are absent on purpose.
TENSORRT_OPS = frozenset(
    """
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu Clip
    Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout
    Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm GlobalAveragePool
    GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GroupNormalization GRU HardSigmoid HardSwish
    Identity If ImageScaler InstanceNormalization IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax
    Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg
    NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal
    RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp
    ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN
    RoiAlign Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size
    Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK
    Transpose Trilu Unsqueeze Upsample Where Xor
    """.split()
)

# Opsets the TensorRT 10.0 parser documents (same page). Project models are exported at exactly OPSET (17).
FOREIGN_OPSET_RANGE = (9, 20)

# Inputs the parser needs as constants (initializers or Constant nodes): (op, input index) -> what it is.
MUST_BE_CONSTANT = {
    ("Slice", 3): "axes",
    ("Squeeze", 1): "axes",
    ("Unsqueeze", 1): "axes",
    ("TopK", 1): "K",
    ("CumSum", 1): "axis",
    ("QuantizeLinear", 1): "y_scale",
    ("QuantizeLinear", 2): "y_zero_point",
    ("DequantizeLinear", 1): "x_scale",
    ("DequantizeLinear", 2): "x_zero_point",
}

_NAMES = {v: k for k, v in TensorProto.DataType.items()}
# Data types TensorRT 10 takes in a graph (same page): DOUBLE only with lossy down-casting, so refused here.
FOREIGN_DTYPES = frozenset(
    {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.INT32, TensorProto.INT64,
     TensorProto.INT8, TensorProto.UINT8, TensorProto.BOOL, TensorProto.FLOAT8E4M3FN, TensorProto.INT4}
)
# Project models: float32 everywhere; int8 only as Q/DQ weights; int64/int32 for shapes, axes and sizes.
PROJECT_INITIALIZER_DTYPES = frozenset({TensorProto.FLOAT, TensorProto.INT8, TensorProto.INT64, TensorProto.INT32})
# "Quantized types" in TensorRT 10: only valid as the input of a DequantizeLinear.
QUANTIZED_DTYPES = frozenset({TensorProto.INT8, TensorProto.INT4, TensorProto.FLOAT8E4M3FN})


def dtype_name(elem_type: int) -> str:
    return _NAMES.get(elem_type, str(elem_type))


def is_project_model(model: onnx.ModelProto) -> bool:
    """A model written by perception's own tools (graph builder, export_torch, quantize)."""
    return model.producer_name.startswith(PRODUCER)


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _subgraphs(node: onnx.NodeProto) -> Iterable[onnx.GraphProto]:
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            yield a.g
        elif a.type == onnx.AttributeProto.GRAPHS:
            yield from a.graphs


def _constants(graph: onnx.GraphProto, outer: dict[str, onnx.TensorProto]) -> dict[str, onnx.TensorProto]:
    consts = dict(outer)
    consts.update({t.name: t for t in graph.initializer})
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            value = _attr(node, "value")
            if isinstance(value, onnx.TensorProto):
                consts[node.output[0]] = value
    return consts


def _node_problems(node: onnx.NodeProto, consts: dict[str, onnx.TensorProto]) -> list[str]:
    """Every TensorRT rule `node` breaks (empty when it is fine)."""
    op = node.op_type
    where = f"node '{node.name or '(unnamed)'}' ({op})"
    if node.domain not in ("", "ai.onnx"):
        return [f"{where} is in the custom domain '{node.domain}', which TensorRT's parser cannot import without a plugin"]
    if op not in TENSORRT_OPS:
        return [f"{where}: operator {op} is not supported by TensorRT 10's ONNX parser"]
    problems = []
    for (rule_op, index), what in MUST_BE_CONSTANT.items():
        if op == rule_op and len(node.input) > index and node.input[index] and node.input[index] not in consts:
            problems.append(f"{where}: input '{what}' must be a constant (initializer) for TensorRT")
    if op in ("Conv", "ConvTranspose"):
        weight = consts.get(node.input[1]) if len(node.input) > 1 else None
        kernel = _attr(node, "kernel_shape", None)
        rank = len(weight.dims) if weight is not None else (len(kernel) + 2 if kernel else None)
        if rank is not None and rank not in (4, 5):
            problems.append(f"{where}: only 2-D or 3-D convolutions are supported by TensorRT")
    if op in ("MaxPool", "AveragePool", "LpPool"):
        if len(_attr(node, "kernel_shape", [])) not in (2, 3):
            problems.append(f"{where}: only 2-D or 3-D pooling is supported by TensorRT")
        if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
            problems.append(f"{where}: the Indices output of MaxPool is not supported by TensorRT")
    if op == "Resize":
        mode = _text(_attr(node, "mode", b"nearest"))
        ctm = _text(_attr(node, "coordinate_transformation_mode", b"half_pixel"))
        nearest = _text(_attr(node, "nearest_mode", b"round_prefer_floor"))
        if mode not in RESIZE_MODES:
            problems.append(f"{where}: resize mode '{mode}' is not supported by TensorRT (use {', '.join(RESIZE_MODES)})")
        if ctm not in RESIZE_COORDINATE_MODES:
            problems.append(f"{where}: coordinate_transformation_mode '{ctm}' is not supported by TensorRT")
        if mode == "nearest" and nearest not in RESIZE_NEAREST_MODES:
            problems.append(f"{where}: nearest_mode '{nearest}' is not supported by TensorRT")
        if _attr(node, "antialias", 0):
            problems.append(f"{where}: antialiased resize is not supported by TensorRT")
    if op in ("QuantizeLinear", "DequantizeLinear"):
        zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        zp = consts.get(zp_name) if zp_name else None
        if zp is not None:
            if zp.data_type not in QUANTIZED_DTYPES:
                problems.append(
                    f"{where}: zero point is {dtype_name(zp.data_type)}; TensorRT quantizes to signed INT8 only"
                )
            elif np.any(numpy_helper.to_array(zp) != 0):
                problems.append(f"{where}: zero point is not 0; TensorRT needs symmetric quantization (zero point 0)")
    if op == "DequantizeLinear":
        x = node.input[0]
        if x in consts and consts[x].data_type not in QUANTIZED_DTYPES:
            problems.append(
                f"{where}: dequantizes a {dtype_name(consts[x].data_type)} constant; TensorRT dequantizes INT8 only "
                "(quantize without bias quantization: QuantizeBias=False)"
            )
    return problems


def _dtype_problems(model: onnx.ModelProto, project: bool) -> list[str]:
    problems = []
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    allowed = PROJECT_INITIALIZER_DTYPES if project else FOREIGN_DTYPES
    for init in graph.initializer:
        if init.data_type not in allowed:
            kind = "a project model" if project else "TensorRT"
            problems.append(
                f"initializer '{init.name}' is {dtype_name(init.data_type)}, which {kind} does not take"
                + (" (TensorRT casts DOUBLE down with clamping; store float32)" if init.data_type == TensorProto.DOUBLE else "")
            )
        elif init.data_type in QUANTIZED_DTYPES:
            # quantized data: only as DequantizeLinear's x, or as a Q/DQ zero point (input 2)
            bad = [
                n for n in consumers.get(init.name, [])
                if not (n.op_type == "DequantizeLinear" and n.input[0] == init.name)
                and not (n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2 and n.input[2] == init.name)
            ]
            if bad:
                problems.append(
                    f"initializer '{init.name}' is {dtype_name(init.data_type)} but feeds node '{bad[0].name}' "
                    f"({bad[0].op_type}); TensorRT takes quantized types only through DequantizeLinear"
                )
    io_allowed = {TensorProto.FLOAT} if project else FOREIGN_DTYPES
    for kind, values in (("input", graph.input), ("output", graph.output)):
        inits = {t.name for t in graph.initializer}
        for v in values:
            if v.name in inits:
                continue
            t = v.type.tensor_type.elem_type
            if t not in io_allowed:
                problems.append(f"graph {kind} '{v.name}' is {dtype_name(t)}; " + ("project models are float32" if project else "TensorRT does not take it"))
    return problems


def check_tensorrt_compatible(
    model_or_path: onnx.ModelProto | str | Path,
    *,
    project: bool | None = None,
    opset_range: tuple[int, int] = FOREIGN_OPSET_RANGE,
    extra_ops: Iterable[str] = (),
) -> None:
    """Raise ModelError (naming the node, its op type and the file) if TensorRT 10's ONNX parser would refuse the model.

    `project` (default: guessed from `producer_name`) applies the project's strict rules: opset exactly 17, static
    input shapes, float32 I/O, float32 / int8 (Q/DQ only) / int64 / int32 initializers. Otherwise the opset must lie in
    `opset_range` (inclusive) and symbolic input dims are allowed. `extra_ops` allows more operators (e.g. ones a
    TensorRT plugin provides).
    """
    if isinstance(model_or_path, onnx.ModelProto):
        model, subject = model_or_path, f"in-memory model '{model_or_path.graph.name}'"
    else:
        model, subject = read_onnx(model_or_path), str(model_or_path)
    if project is None:
        project = is_project_model(model)
    problems: list[str] = []

    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if project and opset != OPSET:
        problems.append(f"opset {opset}: project models are exported at opset {OPSET}")
    elif not project and not opset_range[0] <= opset <= opset_range[1]:
        problems.append(f"opset {opset} is outside the range TensorRT's parser supports ({opset_range[0]}..{opset_range[1]})")

    if project:
        inits = {t.name for t in model.graph.initializer}
        for v in model.graph.input:
            if v.name in inits:
                continue
            dims = v.type.tensor_type.shape.dim
            bad = [d.dim_param or "?" for d in dims if not (d.HasField("dim_value") and d.dim_value > 0)]
            if bad or not v.type.tensor_type.HasField("shape"):
                problems.append(
                    f"graph input '{v.name}' has symbolic or unknown dims {bad}; project models have static shapes"
                )

    problems += _dtype_problems(model, project)

    extra = frozenset(extra_ops)

    def walk(graph: onnx.GraphProto, outer: dict[str, onnx.TensorProto]) -> None:
        consts = _constants(graph, outer)
        for node in graph.node:
            if node.op_type in extra:
                continue
            problems.extend(_node_problems(node, consts))
            for sub in _subgraphs(node):
                walk(sub, consts)

    walk(model.graph, {})
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ModelError(
            "not TensorRT-compatible: " + "; ".join(problems[:5]) + more,
            subject=subject,
            hint="use only operators TensorRT's ONNX parser supports (perception.engines.export.TENSORRT_OPS), "
            "static shapes and float32",
        )


def export_torch(
    module: Any,
    example_input: Any,
    path: str | Path,
    metadata: ModelMetadata,
    *,
    verify: bool = True,
    atol: float = 1e-4,
) -> Path:
    """Export a torch module to a project ONNX model with `metadata` embedded (needs the `train` extra).

    opset 17, static shapes (no dynamic axes), inputs and outputs named as in `metadata`; then onnx's checker,
    `check_tensorrt_compatible` (project rules) and, with `verify`, ONNX Runtime's output against torch's on
    `example_input` (max abs diff <= atol * max(1, |torch output|)). Written with `save_model`.
    """
    try:
        import torch
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ModelError(
            "export needs torch", subject=str(path), hint="install the training extra: pip install 'perception[train]'"
        ) from err
    path = Path(path)
    inputs = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    if len(inputs) != len(metadata.inputs):
        raise ModelError(f"{len(inputs)} example inputs for {len(metadata.inputs)} declared inputs", subject=str(path))
    for t, x in zip(metadata.inputs, inputs):
        if list(x.shape) != list(t.shape):
            raise ModelError(
                f"example input '{t.name}' has shape {list(x.shape)} but the metadata declares {t.shape}",
                subject=str(path),
                hint="project models have static shapes: export with an example of exactly the declared shape",
            )
    module = module.eval()
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tmp_path = Path(tmp) / "export.onnx"
        kwargs: dict[str, Any] = dict(
            input_names=[t.name for t in metadata.inputs],
            output_names=[t.name for t in metadata.outputs],
            opset_version=OPSET,
            do_constant_folding=True,
        )
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            kwargs["dynamo"] = False  # the TorchScript exporter: needs no onnxscript, keeps static shapes as given
        torch.onnx.export(module, inputs, str(tmp_path), **kwargs)
        model = onnx.load(str(tmp_path))
        expected = module(*inputs)
    model.producer_name = f"{PRODUCER} (torch {torch.__version__})"
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as err:
        raise ModelError(f"torch exported an invalid ONNX graph: {err}", subject=str(path)) from err
    check_tensorrt_compatible(model, project=True)
    if verify:
        _verify_against(model, inputs, expected, metadata, atol=atol, subject=str(path))
    return save_model(model, metadata, path)


def _verify_against(model: onnx.ModelProto, inputs: tuple, expected: Any, meta: ModelMetadata, *, atol: float, subject: str) -> None:
    import onnxruntime as ort

    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {t.name: x.detach().cpu().numpy() for t, x in zip(meta.inputs, inputs)}
    outs = session.run([t.name for t in meta.outputs], feeds)
    for t, got, want in zip(meta.outputs, outs, expected):
        want = want.detach().cpu().numpy()
        diff = float(np.max(np.abs(got - want))) if got.size else 0.0
        if diff > atol * max(1.0, float(np.max(np.abs(want))) if want.size else 1.0):
            raise ModelError(f"exported output '{t.name}' differs from torch by {diff:.3g}", subject=subject)
