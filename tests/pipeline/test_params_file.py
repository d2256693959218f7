"""The pipeline reads the nodes' ROS 2 parameter file: values applied and validated, typos named."""
import pytest

from perception.cli import main
from perception.errors import InputError
from perception.pipeline.params_file import load_pipeline_config


def test_dotted_and_nested_names_are_applied(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters:\n    disparity.num_disparities: 64\n    terrain:\n      learn: false\n"
                 "    map:\n      cartesian_cells_m: [0.25, 1.0, 4.0]\n    input_raw: true\n")
    cfg, other = load_pipeline_config(f)
    assert cfg.disparity.num_disparities == 64 and cfg.terrain.learn is False
    assert cfg.map.cartesian_cells_m == (0.25, 1.0, 4.0)
    assert other == ["input_raw"]


@pytest.mark.parametrize("body, match", [
    ("disparity.num_disparitys: 64", "num_disparitys"),
    ("disparity.num_disparities: -3", "num_disparities"),
    ("terrain.backend: cuda", "backend"),
])
def test_bad_values_are_refused_by_name(tmp_path, body, match):
    f = tmp_path / "p.yaml"
    f.write_text(f"/**:\n  ros__parameters:\n    {body}\n")
    with pytest.raises(InputError, match=match):
        load_pipeline_config(f)


def test_replay_with_a_bad_params_file_exits_2_and_names_it(tmp_path, capsys):
    f = tmp_path / "p.yaml"
    f.write_text("just: text\n")
    assert main(["replay", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--params", str(f)]) == 2
    assert "ros__parameters" in capsys.readouterr().err


def test_the_shipped_parameter_file_is_the_pipeline_defaults():
    from perception.pipeline.core import PipelineConfig
    from tests.conftest import REPO

    cfg, _ = load_pipeline_config(REPO / "launch" / "perception.yaml")
    assert cfg == PipelineConfig()
