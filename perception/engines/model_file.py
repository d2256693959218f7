"""Reading and writing model files with their metadata, and checking the metadata against the graph.

`load_model(path)` is the one way the project opens a model: it refuses a missing, truncated or foreign
file, and metadata that disagrees with the graph (names, shapes, dtypes), naming the file and the mismatch.

Content digest: `save_model` also stores, under the key ``perception.digest``, a SHA-256 of the graph's content
(every node, graph input/output and initializer value). `load_model` recomputes it when present, so bytes
overwritten inside the weights -- which still parse as ONNX and would run with wrong results -- are refused as
corrupt. Models written before the digest existed, and foreign models, have none and are not checked this way.
PyTorch checkpoints and pickles (.pt, .pth, .pkl, ...) are refused by name: nothing here ever unpickles.
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


DIGEST_KEY = "perception.digest"
# files that are (or may be) Python pickles: never handed to a loader that could unpickle them
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")


def read_onnx(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelError(
            f"is a {path.suffix} file (a PyTorch checkpoint or Python pickle); models are loaded only from ONNX, "
            "and nothing is ever unpickled", subject=str(path),
            hint="export it to ONNX (torch.onnx.export, or `perception.engines.export`) with its metadata "
                 "(or a YAML beside it) and give the .onnx",
        )
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


def content_digest(model: onnx.ModelProto) -> str:
    """SHA-256 of what the graph computes: nodes (op, domain, tensors, attributes), graph inputs and outputs,
    and every initializer's name, type, shape and values. Metadata props are not part of it."""
    from onnx import numpy_helper

    h = hashlib.sha256()
    g = model.graph
    for node in g.node:
        h.update(repr((node.op_type, node.domain, list(node.input), list(node.output))).encode())
        for attr in node.attribute:
            h.update(attr.SerializeToString(deterministic=True))
    for v in [*g.input, *g.output]:
        h.update(v.name.encode() + b"\0" + v.type.SerializeToString(deterministic=True))
    for init in g.initializer:
        h.update(repr((init.name, init.data_type, list(init.dims))).encode())
        try:
            h.update(numpy_helper.to_array(init).tobytes())
        except Exception:  # noqa: BLE001 - external or malformed data: hash the proto as stored
            h.update(init.SerializeToString(deterministic=True))
    return h.hexdigest()


def check_digest(model: onnx.ModelProto, *, subject: str) -> None:
    """Refuse a model whose stored content digest (written by `save_model`) does not match its graph."""
    stored = next((p.value for p in model.metadata_props if p.key == DIGEST_KEY), None)
    if stored is None:
        return
    try:
        actual = content_digest(model)
    except Exception as err:  # noqa: BLE001 - a graph too broken to hash is corrupt as well
        raise ModelError(f"the graph cannot be read ({type(err).__name__}: {err})", subject=subject,
                         hint="the file is corrupt: re-export or re-download it") from err
    if actual != stored:
        raise ModelError(
            f"content does not match its digest (stored {stored[:12]}, computed {actual[:12]}): the weights or "
            "the graph changed after export", subject=subject,
            hint="the file is corrupt (overwritten, bad copy or download): re-export or re-download it",
        )


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
    check_digest(model, subject=subject)
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
    kept = [p for p in model.metadata_props if p.key not in (METADATA_KEY, DIGEST_KEY)]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
    model.metadata_props.add(key=DIGEST_KEY, value=content_digest(model))
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
