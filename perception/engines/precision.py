"""Which numeric precision a model is, and which one an engine should be built at. Pure functions.

INT8 here means explicit quantization: Q/DQ (QuantizeLinear/DequantizeLinear) nodes in the ONNX graph, as
written by `perception calibrate int8`. Implicit calibrators were deprecated in TensorRT 10.1 and removed in
TensorRT 11, so a float model asked for INT8 is built at the best float precision instead, with the reason.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import onnx

from perception.engines.base import PRECISIONS
from perception.engines.metadata import ModelMetadata
from perception.errors import EngineError

log = logging.getLogger("perception.engines")

# Operators only a quantized graph contains (Q/DQ format, and the older QOperator format).
QUANTIZED_OPS = frozenset({
    "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger",
})
CALIBRATE_HINT = "run `perception calibrate int8` to write a Q/DQ INT8 model, then open that one"


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise EngineError(f"unknown precision '{precision}'", subject="precision",
                          hint=f"use one of {', '.join(PRECISIONS)}")
    return precision


def graph_op_types(path: str | Path) -> set[str]:
    """The operator types in a model's main graph (weights are not loaded: cheap on big models)."""
    model = onnx.load(str(path), load_external_data=False)
    return {node.op_type for node in model.graph.node}


def model_precision(meta: ModelMetadata, op_types: Iterable[str] = ()) -> str:
    """The precision a model is at: metadata `decoder.precision`, else detected from the graph.

    A graph with quantized operators is INT8 whatever the metadata says (the graph is what runs).
    """
    quantized = not QUANTIZED_OPS.isdisjoint(op_types)
    declared = meta.decoder.get("precision")
    if declared is not None and declared not in PRECISIONS:
        log.warning("model %s: metadata precision '%s' is not one of %s; detecting from the graph",
                    meta.name, declared, ", ".join(PRECISIONS))
        declared = None
    if quantized:
        if declared not in (None, "int8"):
            log.warning("model %s: metadata says %s but the graph has Q/DQ nodes; treating it as int8",
                        meta.name, declared)
        return "int8"
    if declared is not None:
        return declared
    if any(t.dtype == "float16" for t in meta.inputs):
        return "fp16"
    return "fp32"


def platform_fast_modes(major: int, minor: int) -> tuple[bool, bool]:
    """(fast fp16, fast int8) for a GPU compute capability (TensorRT's platformHasFast* are deprecated).

    Fast FP16 from sm53 (Jetson TX1) except sm61 (consumer Pascal); fast INT8 (DP4A / tensor cores) from sm61.
    """
    cc = (int(major), int(minor))
    fast_fp16 = cc >= (5, 3) and cc != (6, 1)
    fast_int8 = cc >= (6, 1)
    return fast_fp16, fast_int8


@dataclass(frozen=True)
class PrecisionChoice:
    """What to build: the resulting precision, the builder flags to set, and why (for the log)."""

    precision: str
    flags: tuple[str, ...]  # subset of ("fp16", "int8"): TensorRT BuilderFlag names, lower case
    reason: str
    downgraded: bool = False  # True when the request could not be met: callers log `reason` as a WARNING


def select_precision(requested: str, *, model: str, fast_fp16: bool, fast_int8: bool) -> PrecisionChoice:
    """Requested precision vs what the model is and what the GPU does fast.

    - a Q/DQ (int8) model is built INT8 whatever is requested (its graph says so), plus FP16 for the
      layers outside Q/DQ pairs when the GPU has fast FP16;
    - INT8 asked for a float model cannot be met (no implicit calibration): FP16 if fast, else FP32;
    - FP16 asked on a GPU without fast FP16 gives FP32;
    - an FP16 model stays FP16.
    """
    check_precision(requested)
    check_precision(model)
    fp16_flag = ("fp16",) if fast_fp16 else ()
    if model == "int8":
        reason = "the model has Q/DQ nodes: explicit INT8"
        if requested != "int8":
            reason += f" (asked for {requested}, but a quantized graph runs INT8)"
        if not fast_int8:
            reason += "; this GPU has no fast INT8, expect it to be slow"
        return PrecisionChoice("int8", ("int8", *fp16_flag), reason, downgraded=requested != "int8" or not fast_int8)
    if model == "fp16":
        return PrecisionChoice("fp16", ("fp16",), "the model's graph is FP16", downgraded=requested == "int8")
    if requested == "int8":
        best = "fp16" if fast_fp16 else "fp32"
        return PrecisionChoice(best, fp16_flag, f"INT8 needs a Q/DQ model ({CALIBRATE_HINT}); building {best}",
                               downgraded=True)
    if requested == "fp16":
        if fast_fp16:
            return PrecisionChoice("fp16", ("fp16",), "FP16 as asked")
        return PrecisionChoice("fp32", (), "this GPU has no fast FP16; building FP32", downgraded=True)
    return PrecisionChoice("fp32", (), "FP32 as asked")
