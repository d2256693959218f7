"""Reading and writing model files with their metadata, and checking the metadata against the graph.

`load_model(path)` is the one way the project opens a model: it refuses a missing, truncated or foreign
file, and metadata that disagrees with the graph (names, shapes, dtypes), naming the file and the mismatch.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import onnx

from perception.engines.metadata import METADATA_KEY, ModelMetadata
from perception.errors import ModelError

ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.BOOL: "bool",
}


@dataclass(frozen=True)
class ModelFile:
    """A model on disk with its verified metadata and content hash (the engine-cache key)."""

    path: Path
    metadata: ModelMetadata
    sha256: str
    opset: int


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(path: str | Path) -> Path:
    """`model.onnx` -> `model.yaml`: where a foreign model's metadata lives."""
    return Path(path).with_suffix(".yaml")


def read_onnx(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise ModelError("model file not found", subject=str(path), hint="check the path, or run `perception engines list`")
    try:
        return onnx.load(str(path))
    except Exception as err:  # onnx raises DecodeError, google.protobuf errors, OSError...
        raise ModelError(
            f"not a readable ONNX model ({type(err).__name__}: {err})",
            subject=str(path),
            hint="the file is corrupt or truncated, or not ONNX: re-export or re-download it",
        ) from err


def embedded_metadata(model: onnx.ModelProto, *, subject: str) -> ModelMetadata | None:
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return ModelMetadata.from_json(prop.value, subject=subject)
    return None


def graph_signature(model: onnx.ModelProto) -> tuple[dict[str, tuple[list[int], str]], dict[str, tuple[list[int], str]]]:
    """{name: (shape, dtype)} for the graph's real inputs and its outputs; symbolic dims are -1."""
    initializers = {init.name for init in model.graph.initializer}

    def sig(values) -> dict[str, tuple[list[int], str]]:
        out = {}
        for v in values:
            if v.name in initializers:
                continue
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
            out[v.name] = (dims, ONNX_DTYPES.get(t.elem_type, f"onnx:{t.elem_type}"))
        return out

    return sig(model.graph.input), sig(model.graph.output)


def check_against_graph(meta: ModelMetadata, model: onnx.ModelProto, *, subject: str) -> None:
    """Metadata and graph must agree on every tensor's name, dtype and (static) shape."""
    graph_in, graph_out = graph_signature(model)
    for kind, declared, actual in (("input", meta.inputs, graph_in), ("output", meta.outputs, graph_out)):
        names = {t.name for t in declared}
        if names != set(actual):
            raise ModelError(
                f"metadata {kind}s {sorted(names)} do not match the graph's {sorted(actual)}",
                subject=subject,
                hint="fix the metadata (or the YAML beside the model) to name the graph's tensors",
            )
        for t in declared:
            shape, dtype = actual[t.name]
            if dtype != t.dtype:
                raise ModelError(f"{kind} '{t.name}' is {dtype} in the graph but {t.dtype} in the metadata", subject=subject)
            if len(shape) != len(t.shape) or any(g not in (-1, m) for g, m in zip(shape, t.shape)):
                raise ModelError(
                    f"{kind} '{t.name}' has shape {shape} in the graph but {t.shape} in the metadata", subject=subject
                )


def load_model(path: str | Path, *, task: str | None = None) -> ModelFile:
    """Open a model, take its metadata (embedded, else the YAML beside it) and verify it against the graph.

    `task` refuses a model made for another stage.
    """
    path = Path(path)
    model = read_onnx(path)
    subject = str(path)
    meta = embedded_metadata(model, subject=subject)
    if meta is None:
        side = sidecar_path(path)
        if not side.is_file():
            raise ModelError(
                f"carries no '{METADATA_KEY}' metadata and there is no {side.name} beside it",
                subject=subject,
                hint="write a YAML beside the model giving task, inputs, outputs, classes (see README: bring your own model)",
            )
        meta = ModelMetadata.from_yaml(side)
    check_against_graph(meta, model, subject=subject)
    if task is not None:
        meta.require(task=task, subject=subject)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return ModelFile(path=path, metadata=meta, sha256=sha256_of(path), opset=opset)


def save_model(model: onnx.ModelProto, meta: ModelMetadata, path: str | Path) -> Path:
    """Write `model` with `meta` embedded, after checking they agree and the graph is valid ONNX."""
    path = Path(path)
    meta.validate(subject=str(path))
    check_against_graph(meta, model, subject=str(path))
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
