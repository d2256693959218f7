"""Shared fixtures. Real data comes from $PERCEPTION_DATA (CI: ../shared/data); tests skip without it.

Network isolation: tests open ports (the viewer, DDS), and no traffic may leave loopback. When the session starts
outside a private network namespace, it re-runs itself inside one (`unshare -n`, loopback up) before collecting
anything, so every test runs isolated; where unshare is not permitted it runs as it is and says so.
`PERCEPTION_TEST_NETNS=off` turns this off.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NETNS_ENV = "PERCEPTION_TEST_NETNS"


def _isolate_network() -> None:
    if os.environ.get(NETNS_ENV) in ("inside", "off") or not shutil.which("unshare") or not shutil.which("ip"):
        return
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        print(f"conftest: no private network namespace here ({probe.stderr.decode().strip()}); tests run "
              "in this one", file=sys.stderr)
        return
    env = dict(os.environ, **{NETNS_ENV: "inside"})
    command = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *sys.orig_argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe("unshare", command, env)


def pytest_configure(config) -> None:
    if not hasattr(config, "workerinput"):  # the main process only
        _isolate_network()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real data folder, or skip with the reason."""
    value = os.environ.get("PERCEPTION_DATA")
    if not value:
        pytest.skip("PERCEPTION_DATA is not set (CI sets it to ../shared/data)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"PERCEPTION_DATA={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def euroc_bag(data_dir) -> Path:
    """The real EuRoC stereo bag of the shared data (ROS 2, MCAP), or skip."""
    path = data_dir / "euroc_stereo_bag"
    if not path.is_dir():
        pytest.skip(f"{path} is missing")
    return path
