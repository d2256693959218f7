"""ROS tests: real rclpy (the ros-* wheels of the test extra) inside a private network namespace.

`namespace_runner` runs a command in a fresh network namespace with only the loopback interface up
(`unshare -n`, or `unshare -rn` as an unprivileged user), so DDS discovery sees nothing but the processes of
the test, and the test sees nothing of the machine's network. Tests skip, saying why, when rclpy or the
namespace is not available.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _rclpy_missing() -> str:
    for module in ("rclpy", "sensor_msgs.msg", "stereo_msgs.msg", "nav_msgs.msg", "diagnostic_msgs.msg"):
        try:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed (pip install -e '.[test]' installs the ros-* wheels)"
        except ModuleNotFoundError:
            return f"{module} is not installed (pip install -e '.[test]' installs the ros-* wheels)"
    return ""


def _unshare_prefix() -> list[str] | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        try:
            r = subprocess.run([*prefix, "ip", "link", "set", "lo", "up"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            return prefix
    return None


@pytest.fixture(scope="session")
def rclpy_available() -> None:
    reason = _rclpy_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def namespace_runner(rclpy_available):
    """run(args, timeout) -> CompletedProcess: `python args...` in a private network namespace (see module doc)."""
    prefix = _unshare_prefix()
    if prefix is None:
        pytest.skip("cannot create a private network namespace here (needs `unshare -n` or `unshare -rn` and `ip`)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROS_", "RMW_", "FASTDDS_", "FASTRTPS_"))}
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
               ROS_DOMAIN_ID="0", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)

    def run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
        script = 'ip link set lo up && exec "$@"'
        return subprocess.run([*prefix, "sh", "-c", script, "sh", sys.executable, *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=timeout)

    return run


def run_peer(namespace_runner, module: str, tmp, scenario: str | None, *args: str, timeout: float = 240) -> dict:
    """Run the peer program `module` (tests.ros.checker, tests.faults.peer, tests.ros.soak) for SCENARIO (None:
    a program without scenarios) in a private network namespace, with the node's log in TMP; its JSON result, with
    `_wall_s` and the tail of the node log in `_node_log`. Fails the test with the node log when the peer reports an
    error or writes nothing."""
    import json
    import time

    name = scenario or module.rsplit(".", 1)[-1]
    out, log = tmp / f"{name}.json", tmp / f"{name}-node.log"
    t0 = time.monotonic()
    try:
        r = namespace_runner(["-m", module, *([scenario] if scenario else []), "--out", str(out), "--node-log",
                              str(log), "--tmp", str(tmp), *args], timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: no result within {timeout} s\n--- node log ---\n"
                    + (log.read_text()[-4000:] if log.exists() else ""))
    node_log = log.read_text()[-4000:] if log.exists() else ""
    assert out.exists(), f"{module} wrote nothing (rc {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}\n{node_log}"
    result = json.loads(out.read_text())
    assert "error" not in result, f"{result['error']}\n--- node log ---\n{node_log}"
    result["_wall_s"] = round(time.monotonic() - t0, 2)
    result["_node_log"] = node_log
    return result
