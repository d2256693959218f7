"""ROS parameters of the nodes, derived from the core's configuration so they cannot drift from it.

Pipeline parameters are found by walking `PipelineConfig`: each nested dataclass field (`disparity:
DisparityConfig`, and whatever sections are added later) becomes parameters `<section>.<field>`, with the
description, range and choices the core declares (`perception.params.param`, read with the class's `describe()`
or `describe_config`). A plain (non-dataclass) field of `PipelineConfig` becomes a parameter of its own name.
Node parameters (inputs, synchronisation, outputs, diagnostics) are declared here in the same form.

`ParamSpec.descriptor()` builds the rclpy ParameterDescriptor (description, integer / floating point range,
choices in `additional_constraints`); rclpy itself refuses a value outside the range, and the node refuses a
value the core's validation refuses (choices, cross-field rules such as p2 > p1) by building the config.

`parameters_yaml()` writes the `/**: ros__parameters:` file of the defaults (launch/perception.yaml); the tests
check that the shipped file lists exactly these parameters. Nothing here imports rclpy at module level.

    python -m perception_nodes.params > launch/perception.yaml     # the parameters file
    python -m perception_nodes.params --markdown [--node]          # the table of docs/ros.md
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import yaml

from perception.params import describe_config
from perception.pipeline import PipelineConfig

OUTPUT_CHOICES = ("all", "disparity", "terrain/labels", "terrain/classes", "terrain/costmap", "scene/class_mask",
                  "scene/color_mask", "detections", "warnings", "overlay", "map/costmap")
BACKENDS = ("auto", "onnxruntime", "tensorrt")

INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class ParamSpec:
    name: str  # ROS name, e.g. "disparity.num_disparities"
    default: Any
    description: str
    lo: Any = None
    hi: Any = None
    choices: tuple | None = None
    section: str | None = None  # PipelineConfig field it belongs to (None: a node parameter)
    field: str | None = None
    read_only: bool = False

    @property
    def ros_default(self) -> Any:
        """The default as a ROS parameter value (tuples become lists of floats)."""
        if isinstance(self.default, tuple):
            return [float(v) for v in self.default]
        return self.default

    def descriptor(self):
        from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

        desc = ParameterDescriptor(name=self.name, description=self.description, read_only=self.read_only)
        if self.choices:
            desc.additional_constraints = "one of: " + ", ".join(str(c) for c in self.choices)
        bounded = self.lo is not None or self.hi is not None
        if bounded and not isinstance(self.default, bool):
            if isinstance(self.default, int):
                lo = INT64[0] if self.lo is None else int(math.ceil(self.lo))
                hi = INT64[1] if self.hi is None else int(math.floor(self.hi))
                desc.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=0)]
            elif isinstance(self.default, float):
                lo = -math.inf if self.lo is None else float(self.lo)
                hi = math.inf if self.hi is None else float(self.hi)
                desc.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
        if isinstance(self.default, tuple) and not self.default:
            desc.dynamic_typing = True
        return desc

    def range_text(self) -> str:
        if self.choices:
            return ", ".join(str(c) for c in self.choices)
        if self.lo is None and self.hi is None:
            return ""
        return f"{'' if self.lo is None else self.lo} .. {'' if self.hi is None else self.hi}"


def _describe(cls) -> dict[str, dict]:
    describe = getattr(cls, "describe", None)
    if callable(describe):
        return describe()
    try:
        return describe_config(cls)
    except KeyError:  # a dataclass made without `param`: defaults only
        return {f.name: {"default": _default(f), "help": "", "range": (None, None), "choices": None}
                for f in dataclasses.fields(cls)}


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _section_class(f: dataclasses.Field, config: PipelineConfig):
    value = getattr(config, f.name)
    return type(value) if dataclasses.is_dataclass(value) else None


def pipeline_specs(config: PipelineConfig | None = None) -> list[ParamSpec]:
    """One spec per configurable value of `PipelineConfig` (module doc)."""
    config = config or PipelineConfig()
    specs = []
    for f in dataclasses.fields(config):
        cls = _section_class(f, config)
        if cls is None:
            meta = f.metadata or {}
            lo, hi = meta.get("range", (None, None))
            specs.append(ParamSpec(f.name, _default(f), meta.get("help", ""), lo, hi, meta.get("choices"),
                                   section=None, field=f.name))
            continue
        for name, d in _describe(cls).items():
            lo, hi = d.get("range") or (None, None)
            choices = d.get("choices")
            specs.append(ParamSpec(f"{f.name}.{name}", d["default"], d.get("help", ""), lo, hi,
                                   tuple(choices) if choices else None, section=f.name, field=name))
    return [s for s in specs if _ros_type_ok(s.default)]


def _ros_type_ok(value: Any) -> bool:
    if isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (tuple, list)):
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    return False


def node_specs(outputs: tuple[str, ...] = ("all",)) -> list[ParamSpec]:
    """The node's own parameters (inputs, synchronisation, outputs, diagnostics)."""
    return [
        ParamSpec("raw_input", False, "subscribe to left/image_raw + right/image_raw (unrectified) and rectify them "
                  "with the camera_info, instead of left/image_rect + right/image_rect", read_only=True),
        ParamSpec("mono", False, "one camera: image + camera_info instead of a stereo pair (scene parsing and "
                  "detection without range; stereo, terrain and the maps need a pair)", read_only=True),
        ParamSpec("outputs", list(outputs), "outputs this node publishes: all, or a list of topic names",
                  choices=OUTPUT_CHOICES, read_only=True),
        ParamSpec("backend", "auto", "ConvNet engine backend: unless auto, given to every section with a backend "
                  "field (e.g. scene.backend)", choices=BACKENDS,
                  read_only=True),
        ParamSpec("sync_tolerance_ms", 5.0, "largest left/right stamp difference paired as one frame, ms",
                  0.0, 1000.0),
        ParamSpec("sync_queue_size", 10, "images kept per side while waiting for their partner", 1, 1000),
        ParamSpec("frame_queue", 1, "synchronised frames waiting for the pipeline; when full the oldest is dropped "
                  "(counted as 'pipeline busy')", 1, 100),
        ParamSpec("overlap", 1, "frames started (rectify, disparity, networks) in a second thread while the current "
                  "one is finished (ground, tracking, learning, maps, publishing); 0: one frame at a time",
                  0, 4, read_only=True),
        ParamSpec("odom_max_dt_ms", 100.0, "largest stamp difference between a frame and the odom message whose "
                  "pose (odom -> base_link) it takes; none closer: the frame has no pose", 0.0, 10000.0),
        ParamSpec("lazy", True, "skip the pipeline for frames no enabled output has a subscriber for (the terrain "
                  "learning and the map pause meanwhile)"),
        ParamSpec("diagnostics_period_s", 1.0, "period of /diagnostics, s", 0.1, 60.0, read_only=True),
    ]


def all_specs(outputs: tuple[str, ...] = ("all",)) -> list[ParamSpec]:
    return node_specs(outputs) + pipeline_specs()


def config_from_values(values: dict[str, Any], base: PipelineConfig | None = None) -> PipelineConfig:
    """A PipelineConfig from {ROS name: value} over `base` (default: the defaults); the core validates it
    (InputError / ValueError / TypeError for a value it refuses)."""
    base = base or PipelineConfig()
    sections: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    by_name = {s.name: s for s in pipeline_specs(base)}
    for name, value in values.items():
        spec = by_name.get(name)
        if spec is None:
            continue
        if isinstance(spec.default, tuple):
            value = tuple(value)
        elif isinstance(spec.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if spec.section is None:
            top[spec.field] = value
        else:
            sections.setdefault(spec.section, {})[spec.field] = value
    changes = dict(top)
    for section, fields in sections.items():
        changes[section] = dataclasses.replace(getattr(base, section), **fields)
    return dataclasses.replace(base, **changes) if changes else base


#: parameters whose default depends on the executable (perception_node, stereo_node, terrain_node): not in the file
PER_EXECUTABLE = ("outputs",)


def file_specs() -> list[ParamSpec]:
    """The parameters the shipped parameters file lists."""
    return [s for s in all_specs() if s.name not in PER_EXECUTABLE]


def parameters_yaml(node: str = "/**") -> str:
    """The parameters file of the defaults, `/**: ros__parameters:` form, sections nested."""
    params: dict[str, Any] = {}
    for spec in file_specs():
        target = params
        *parents, leaf = spec.name.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = spec.ros_default
    header = ("# Parameters of the perception nodes (ROS 2 parameters file). Generated from the core's configuration:\n"
              "#   python -m perception_nodes.params > launch/perception.yaml\n"
              "# Descriptions and ranges: docs/ros.md, or `ros2 param describe /perception <name>`.\n")
    return header + yaml.safe_dump({node: {"ros__parameters": params}}, sort_keys=False, default_flow_style=False)


def markdown_table(specs: list[ParamSpec] | None = None) -> str:
    """A markdown table of parameters (docs/ros.md): all of them by default."""
    rows = ["| parameter | default | range / choices | description |", "|---|---|---|---|"]
    for s in all_specs() if specs is None else specs:
        default = s.ros_default
        rows.append(f"| `{s.name}` | `{default}` | {s.range_text()} | {s.description}"
                    f"{' (read-only: set at start)' if s.read_only else ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    import sys

    if "--markdown" in sys.argv:
        print(markdown_table(node_specs() if "--node" in sys.argv else None))
    else:
        print(parameters_yaml(), end="")
