"""Pipeline parameters from a ROS 2 parameter file, the same file the nodes load (launch/perception.yaml).

The file is `<node or /**>: ros__parameters: {...}`; names are `<section>.<field>` for the sections of
`PipelineConfig` (`disparity.num_disparities`, `terrain.learn`, ...), written either dotted or as nested maps.
Every value is checked by the section's own validation (range, type, choices). A misspelt field of a known section
is an error naming it; names outside the pipeline's sections (the node's own: topics, sync, outputs) are returned,
not applied, so `perception replay --params` and the nodes read one file.

    >>> cfg, other = pipeline_config_from_params({"disparity.num_disparities": 64, "input_raw": True})
    >>> cfg.disparity.num_disparities, other
    (64, ['input_raw'])
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from perception.errors import InputError
from perception.pipeline.core import PipelineConfig


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def read_parameters(path: str | Path, node: str | None = None) -> dict[str, Any]:
    """The flat {name: value} parameters of `node` (default: `/**`, else the only node) in a ROS 2 YAML file."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError("no such file", subject=str(path)) from None
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML ({err})", subject=str(path)) from None
    if not isinstance(doc, dict):
        raise InputError("expected a map of node names", subject=str(path), hint="/**: {ros__parameters: {...}}")
    nodes = {k: v for k, v in doc.items() if isinstance(v, dict) and "ros__parameters" in v}
    if not nodes:
        raise InputError("no `ros__parameters` section", subject=str(path), hint="/**: {ros__parameters: {...}}")
    key = node if node is not None else ("/**" if "/**" in nodes else (next(iter(nodes)) if len(nodes) == 1 else None))
    if key not in nodes:
        raise InputError(f"parameters for {node or 'one node'} not found among {sorted(nodes)}", subject=str(path),
                         hint="name the node, or use /** for every node")
    return _flatten(nodes[key]["ros__parameters"] or {})


def pipeline_config_from_params(params: dict[str, Any], base: PipelineConfig | None = None
                                ) -> tuple[PipelineConfig, list[str]]:
    """(PipelineConfig with `params` applied over `base`, names that are not pipeline parameters)."""
    base = base or PipelineConfig()
    sections = {f.name: f for f in dataclasses.fields(PipelineConfig)}
    updates: dict[str, dict[str, Any]] = {}
    other = []
    for name, value in params.items():
        section, _, field = name.partition(".")
        if section not in sections or not field:
            other.append(name)
            continue
        cls = type(getattr(base, section))
        known = {f.name for f in dataclasses.fields(cls)}
        if field not in known:
            raise InputError(f"unknown parameter {name!r}", subject="parameters",
                             hint=f"{section} has: {', '.join(sorted(known))}")
        updates.setdefault(section, {})[field] = tuple(value) if isinstance(value, list) else value
    changes = {section: dataclasses.replace(getattr(base, section), **values) for section, values in updates.items()}
    return dataclasses.replace(base, **changes), sorted(other)


def load_pipeline_config(path: str | Path, node: str | None = None) -> tuple[PipelineConfig, list[str]]:
    """`pipeline_config_from_params` of a parameter file."""
    return pipeline_config_from_params(read_parameters(path, node))


def config_for_command(path: str | Path | None, command: str) -> PipelineConfig:
    """The pipeline configuration of a command's `--params FILE` (defaults without one); names that are not
    pipeline parameters are reported on stderr, not applied."""
    if path is None:
        return PipelineConfig()
    config, ignored = load_pipeline_config(path)
    if ignored:
        import sys

        print(f"perception {command}: {path}: not pipeline parameters, ignored: {', '.join(ignored)}",
              file=sys.stderr)
    return config
