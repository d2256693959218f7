"""`colcon build` on a ROS 2 robot: the package builds as ament_python and installs what `ros2 run/launch` need."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

COLCON = Path(sys.executable).parent / "colcon"


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory) -> Path:
    if not COLCON.exists():
        pytest.skip("colcon is not installed (it comes with the test extra: pip install -e '.[test]')")
    ws = tmp_path_factory.mktemp("ws")
    src = ws / "src" / "perception"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True)
    for rel in files.stdout.split():
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMENT_", "COLCON_"))}
    result = subprocess.run(
        [str(COLCON), "--log-base", str(ws / "log"), "build", "--base-paths", "src", "--packages-select", "perception"],
        cwd=ws, capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return ws / "install" / "perception"


def test_colcon_installs_the_ament_package(colcon_install):
    assert (colcon_install / "share" / "ament_index" / "resource_index" / "packages" / "perception").is_file()
    assert (colcon_install / "share" / "perception" / "package.xml").is_file()


def test_colcon_installs_the_cli_where_ros2_run_finds_it(colcon_install):
    assert os.access(colcon_install / "lib" / "perception" / "perception", os.X_OK)


def test_colcon_installs_the_core_and_the_nodes(colcon_install):
    site = next(colcon_install.glob("lib/python3*/site-packages"))
    assert (site / "perception" / "engines" / "metadata.py").is_file()
    assert (site / "perception_nodes" / "__init__.py").is_file()


def test_colcon_installs_shipped_models_beside_the_package(colcon_install):
    shipped = sorted(p.name for p in (REPO / "engines").glob("*.onnx"))
    installed = sorted(p.name for p in (colcon_install / "share" / "perception" / "engines").glob("*.onnx")) if shipped else []
    assert installed == shipped
