"""Model metadata: what a model is, carried inside the ONNX file (or a YAML beside a foreign model).

Every model the project loads says its task, its input (name, static shape, layout, colour order,
normalisation), its outputs and how to decode them, and its class names and colours. No binding name is
ever configured by hand: the engine reads them from here and checks them against the graph.

Stored in ONNX `metadata_props` under the key ``perception`` as one JSON object (schema 1). A foreign
model (e.g. a YOLO export) gets the same fields from ``<model>.yaml`` beside ``<model>.onnx``.

>>> meta = ModelMetadata(task="scene", name="demo",
...     inputs=[TensorInfo("image", [1, 3, 8, 8], "float32", layout="NCHW", color="rgb")],
...     outputs=[TensorInfo("logits", [1, 2, 8, 8], "float32", decoding="logits")],
...     classes=[ClassInfo("road", (128, 64, 128)), ClassInfo("sky", (70, 130, 180))])
>>> ModelMetadata.from_json(meta.to_json()) == meta
True
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from perception.errors import ModelError

METADATA_KEY = "perception"
SCHEMA_VERSION = 1
TASKS = ("terrain_features", "scene", "detect", "stereo", "generic")
LAYOUT_LETTERS = "NCHWDL"  # batch, channels, height, width, depth, length (e.g. anchors)
COLORS = ("rgb", "bgr", "gray", "yuv", "none")
DTYPES = ("float32", "float16", "int8", "uint8", "int32", "int64", "bool")


@dataclass(frozen=True)
class Normalization:
    """x_net = (x_uint8 * scale - mean[c]) / std[c], per channel."""

    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class TensorInfo:
    """One named input or output. Shapes are static (TensorRT-friendly); -1 only in foreign models."""

    name: str
    shape: list[int]
    dtype: str = "float32"
    layout: str = "NCHW"
    color: str = "none"
    normalization: Normalization | None = None
    decoding: str = "raw"  # raw | logits | probabilities | features | boxes | scores | heatmap | ...

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", [int(d) for d in self.shape])


@dataclass(frozen=True)
class ClassInfo:
    name: str
    color: tuple[int, int, int] = (255, 255, 255)  # RGB for display

    def __post_init__(self) -> None:
        object.__setattr__(self, "color", tuple(int(c) for c in self.color))


@dataclass(frozen=True)
class ModelMetadata:
    task: str
    name: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    classes: list[ClassInfo] = field(default_factory=list)
    decoder: dict[str, Any] = field(default_factory=dict)  # task-specific decoding parameters
    version: str = "1"
    trained_on: str = ""
    license: str = ""
    schema: int = SCHEMA_VERSION

    # --- (de)serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, subject: str = "model metadata") -> "ModelMetadata":
        if not isinstance(data, dict):
            raise ModelError("metadata is not a mapping", subject=subject)
        missing = [k for k in ("task", "name", "inputs", "outputs") if k not in data]
        if missing:
            raise ModelError(f"metadata lacks {', '.join(missing)}", subject=subject, hint=_HINT)
        try:
            meta = cls(
                task=str(data["task"]),
                name=str(data["name"]),
                inputs=[_tensor(t) for t in data["inputs"]],
                outputs=[_tensor(t) for t in data["outputs"]],
                classes=[ClassInfo(str(c["name"]), tuple(c.get("color", (255, 255, 255)))) for c in data.get("classes", [])],
                decoder=dict(data.get("decoder", {})),
                version=str(data.get("version", "1")),
                trained_on=str(data.get("trained_on", "")),
                license=str(data.get("license", "")),
                schema=int(data.get("schema", SCHEMA_VERSION)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"malformed metadata: {err!r}", subject=subject, hint=_HINT) from err
        meta.validate(subject=subject)
        return meta

    @classmethod
    def from_json(cls, text: str, *, subject: str = "model metadata") -> "ModelMetadata":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ModelError(f"metadata is not valid JSON: {err}", subject=subject) from err
        return cls.from_dict(data, subject=subject)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "ModelMetadata":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ModelError(f"cannot read metadata YAML: {err}", subject=str(path)) from err
        return cls.from_dict(data, subject=str(path))

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(json.loads(self.to_json()), sort_keys=False))

    # --- checks ------------------------------------------------------------------------------------
    def validate(self, *, subject: str = "model metadata") -> None:
        """Internal consistency: known task, layouts, dtypes; unique names; class count vs decoder."""
        if self.schema > SCHEMA_VERSION:
            raise ModelError(
                f"metadata schema {self.schema} is newer than this release understands ({SCHEMA_VERSION})",
                subject=subject,
                hint="upgrade perception",
            )
        if self.task not in TASKS:
            raise ModelError(f"unknown task '{self.task}'", subject=subject, hint=f"use one of {', '.join(TASKS)}")
        if not self.inputs or not self.outputs:
            raise ModelError("metadata declares no inputs or no outputs", subject=subject, hint=_HINT)
        for t in [*self.inputs, *self.outputs]:
            if t.dtype not in DTYPES:
                raise ModelError(f"tensor '{t.name}' has unknown dtype '{t.dtype}'", subject=subject)
            if not t.layout or set(t.layout) - set(LAYOUT_LETTERS) or len(set(t.layout)) != len(t.layout):
                raise ModelError(
                    f"tensor '{t.name}' has layout '{t.layout}'",
                    subject=subject,
                    hint=f"a layout is one distinct letter of {LAYOUT_LETTERS} per dimension, e.g. NCHW",
                )
            if t.color not in COLORS:
                raise ModelError(f"tensor '{t.name}' has unknown colour order '{t.color}'", subject=subject)
            if len(t.shape) != len(t.layout):
                raise ModelError(
                    f"tensor '{t.name}' shape {t.shape} does not match layout {t.layout}", subject=subject
                )
        names = [t.name for t in [*self.inputs, *self.outputs]]
        if len(set(names)) != len(names):
            raise ModelError(f"tensor names are not unique: {names}", subject=subject)
        if self.task in ("scene", "detect") and not self.classes:
            raise ModelError(f"a {self.task} model must name its classes", subject=subject, hint=_HINT)
        self._check_class_channels(subject)
        for t in self.inputs:
            norm = t.normalization
            if norm is None:
                continue
            channels = t.shape[t.layout.index("C")] if "C" in t.layout else -1
            for what, values in (("mean", norm.mean), ("std", norm.std)):
                if len(values) not in (1, channels) and channels > 0:
                    raise ModelError(f"input '{t.name}' has {channels} channels but its normalization {what} has "
                                     f"{len(values)} values", subject=subject, hint=_HINT)
            if not all(v > 0 for v in norm.std) or not norm.scale > 0:
                raise ModelError(f"input '{t.name}' normalization needs scale > 0 and std > 0, got "
                                 f"scale {norm.scale}, std {list(norm.std)}", subject=subject, hint=_HINT)
        n = self.decoder.get("num_classes")
        if n is not None and self.classes and int(n) != len(self.classes):
            raise ModelError(
                f"decoder.num_classes = {n} but {len(self.classes)} class names are given", subject=subject
            )

    def _check_class_channels(self, subject: str) -> None:
        """A per-class output (scene logits/probabilities, detection heatmap) has one channel per named class."""
        per_class = {"scene": ("logits", "probabilities"), "detect": ("heatmap",)}.get(self.task, ())
        for t in self.outputs:
            if t.decoding not in per_class or "C" not in t.layout:
                continue
            channels = t.shape[t.layout.index("C")]
            if channels > 0 and self.classes and channels != len(self.classes):
                raise ModelError(
                    f"output '{t.name}' ({t.decoding}) has {channels} channels but the metadata names "
                    f"{len(self.classes)} classes", subject=subject,
                    hint="the class list must give one name per output channel: fix the metadata (or the YAML "
                         "beside the model)")

    def require(self, *, task: str, subject: str = "model") -> None:
        """Refuse a model made for another stage, naming both."""
        if self.task != task:
            raise ModelError(
                f"is a '{self.task}' model but this stage needs a '{task}' model",
                subject=subject,
                hint="pass the right model file for this stage",
            )

    def input(self, name: str | None = None) -> TensorInfo:
        if name is None:
            return self.inputs[0]
        for t in self.inputs:
            if t.name == name:
                return t
        raise ModelError(f"no input named '{name}'; inputs are {[t.name for t in self.inputs]}")

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]


_HINT = "models need perception metadata: export with perception's tools, or put a <model>.yaml beside a foreign model"


def _tensor(d: dict[str, Any]) -> TensorInfo:
    norm = d.get("normalization")
    return TensorInfo(
        name=str(d["name"]),
        shape=list(d["shape"]),
        dtype=str(d.get("dtype", "float32")),
        layout=str(d.get("layout", "NCHW")),
        color=str(d.get("color", "none")),
        normalization=Normalization(
            scale=float(norm.get("scale", 1.0 / 255.0)),
            mean=tuple(float(v) for v in norm.get("mean", (0.0, 0.0, 0.0))),
            std=tuple(float(v) for v in norm.get("std", (1.0, 1.0, 1.0))),
        )
        if norm
        else None,
        decoding=str(d.get("decoding", "raw")),
    )
