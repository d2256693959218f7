"""Build script shared by `pip install .` and `colcon build` (ament_python).

pyproject.toml holds the metadata and dependencies; this file adds what colcon needs:
the ament index marker, package.xml, launch files, shipped models and calibrations under
share/perception, and the rclpy node executables under lib/perception (setup.cfg).
"""
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "perception"
HERE = Path(__file__).parent


def tree(folder: str, patterns: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """(share/perception/<sub>, [files]) for every file under `folder` matching `patterns`."""
    groups: dict[str, list[str]] = {}
    for pattern in patterns:
        for path in sorted((HERE / folder).rglob(pattern)):
            rel = path.relative_to(HERE)
            groups.setdefault(f"share/{PACKAGE}/{rel.parent.as_posix()}", []).append(rel.as_posix())
    return sorted(groups.items())


setup(
    packages=find_packages(include=["perception", "perception.*"]) + ["perception_nodes"],
    package_dir={"perception_nodes": "nodes"},
    package_data={"perception.viewer": ["static/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *tree("launch", ("*.py", "*.yaml")),
        *tree("engines", ("*.onnx", "*.yaml", "*.json", "*.npz")),
        *tree("calibration", ("*.yaml", "*.txt")),
    ],
    zip_safe=False,
)
