"""launch/perception.yaml lists exactly the parameters the nodes declare, with their defaults (no drift from the
core's configuration), and every numeric parameter has a description and a range. No rclpy needed."""
from __future__ import annotations

import yaml

from tests.conftest import REPO

PARAMS_FILE = REPO / "launch" / "perception.yaml"
REGENERATE = "regenerate it: .venv/bin/python -m perception_nodes.params > launch/perception.yaml"


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


def test_the_parameters_file_has_the_ros2_form():
    doc = yaml.safe_load(PARAMS_FILE.read_text())
    assert list(doc) == ["/**"]
    assert list(doc["/**"]) == ["ros__parameters"]


def test_the_parameters_file_matches_the_declared_parameters_and_their_defaults():
    from perception_nodes.params import file_specs

    shipped = _flatten(yaml.safe_load(PARAMS_FILE.read_text())["/**"]["ros__parameters"])
    declared = {s.name: s.ros_default for s in file_specs()}
    assert sorted(shipped) == sorted(declared), f"launch/perception.yaml is out of date; {REGENERATE}"
    for name, default in declared.items():
        assert shipped[name] == default, f"{name}: file has {shipped[name]!r}, default is {default!r}; {REGENERATE}"


def test_the_parameters_file_is_what_the_generator_writes():
    from perception_nodes.params import parameters_yaml

    assert PARAMS_FILE.read_text() == parameters_yaml(), REGENERATE


def test_every_pipeline_config_section_becomes_parameters():
    import dataclasses

    from perception.pipeline import PipelineConfig
    from perception_nodes.params import pipeline_specs

    config = PipelineConfig()
    sections = {f.name for f in dataclasses.fields(config) if dataclasses.is_dataclass(getattr(config, f.name))}
    assert sections, "PipelineConfig has no sections"
    assert {s.section for s in pipeline_specs()} == sections


def test_every_parameter_has_a_description_and_numbers_have_a_range():
    from perception_nodes.params import all_specs

    for spec in all_specs():
        assert spec.description.strip(), f"{spec.name} has no description"
        if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool):
            assert spec.lo is not None or spec.hi is not None or spec.choices, f"{spec.name} has no range"


def test_config_from_values_applies_and_validates():
    import pytest

    from perception.errors import PerceptionError
    from perception_nodes.params import config_from_values

    cfg = config_from_values({"disparity.num_disparities": 64, "disparity.p1": 4})
    assert cfg.disparity.num_disparities == 64 and cfg.disparity.p1 == 4.0
    with pytest.raises(PerceptionError):
        config_from_values({"disparity.num_disparities": 5000})
    with pytest.raises(PerceptionError):
        config_from_values({"disparity.p2": 1.0})  # must exceed p1
