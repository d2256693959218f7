"""Launch files parse, declare the documented arguments and start only executables the package installs.

There is no `launch` / `launch_ros` wheel on PyPI, so the files are checked as Python syntax trees, not run.
"""
from __future__ import annotations

import ast
import tomllib

import pytest

from tests.conftest import REPO

LAUNCH = REPO / "launch"
FILES = sorted(LAUNCH.glob("*.launch.py"))
EXPECTED = {"perception.launch.py", "stereo.launch.py", "terrain.launch.py", "detect.launch.py", "replay.launch.py"}


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) == name or getattr(n.func, "attr", None) == name)]


def _kw(call: ast.Call, key: str):
    for kw in call.keywords:
        if kw.arg == key:
            return kw.value
    return None


def _first_args(tree: ast.AST, name: str) -> set[str]:
    return {c.args[0].value for c in _calls(tree, name) if c.args and isinstance(c.args[0], ast.Constant)}


def _scripts() -> set[str]:
    return set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])


def test_the_launch_files_exist():
    assert EXPECTED <= {f.name for f in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_launch_file_parses_and_has_generate_launch_description(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    compile(tree, str(path), "exec")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_launch_file_starts_only_installed_executables_of_this_package(path):
    tree = ast.parse(path.read_text())
    nodes = _calls(tree, "Node")
    assert nodes, "no Node action"
    scripts = _scripts()
    for call in nodes:
        package, executable = _kw(call, "package"), _kw(call, "executable")
        assert isinstance(package, ast.Constant) and package.value == "perception"
        assert isinstance(executable, ast.Constant) and executable.value in scripts, (
            f"{path.name}: executable {ast.unparse(executable)} is not in [project.scripts] ({sorted(scripts)})")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_launch_file_declares_params_file_namespace_and_backend(path):
    tree = ast.parse(path.read_text())
    declared = _first_args(tree, "DeclareLaunchArgument")
    assert {"params_file", "namespace", "backend"} <= declared
    used = _first_args(tree, "LaunchConfiguration")
    assert used <= declared, f"undeclared launch arguments used: {used - declared}"
    for call in _calls(tree, "PathJoinSubstitution"):  # default parameter files exist in launch/
        parts = [e.value for e in call.args[0].elts if isinstance(e, ast.Constant)]
        if parts and parts[-1].endswith(".yaml"):
            assert (REPO / "/".join(parts)).is_file(), f"{'/'.join(parts)} is referenced but missing"


def test_replay_plays_the_bag_with_ros2_bag_play():
    tree = ast.parse((LAUNCH / "replay.launch.py").read_text())
    cmds = [ast.unparse(_kw(c, "cmd")) for c in _calls(tree, "ExecuteProcess")]
    assert cmds and all("'ros2', 'bag', 'play'" in c for c in cmds)


def test_colcon_setup_installs_the_launch_files_and_the_node_executables():
    setup = (REPO / "setup.py").read_text()
    assert 'tree("launch", ("*.py", "*.yaml"))' in setup
    assert "install_scripts=$base/lib/perception" in (REPO / "setup.cfg").read_text()
    for name in ("perception_node", "stereo_node", "terrain_node", "detect_node"):
        assert name in _scripts()
