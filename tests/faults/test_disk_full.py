"""Fault: the disk fills up while `perception replay` writes its output bag (MCAP and sqlite3).

Real, not simulated: the output goes to a 12 MiB tmpfs mounted in a private mount namespace (`unshare -m`, as root
here and in CI), which fills after a few EuRoC frames. `perception replay` must stop with exit code != 0 and an
error naming the output file and the full disk, and the bag must stay readable up to the fault: rosbags' AnyReader
opens it, every message deserialises, metadata.yaml counts exactly what is there, and the frames that are complete
(every topic of a frame present) are the first frames of the input, in order -- at most the frame being written
when the disk filled is partial. Skips, saying why, where a mount namespace or tmpfs is not permitted.
Reduced form: the 20-frame EuRoC bag, 2-3 frames fit (a few seconds per storage).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SIZE = "12m"

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def small_fs(tmp_path_factory):
    """A checked way to run a shell script with a SIZE tmpfs mounted at $1 (private mount namespace)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed: cannot make a small filesystem")
    probe_dir = tmp_path_factory.mktemp("probe")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f'mount -t tmpfs -o size={SIZE} tmpfs "$1" && df -k "$1"',
                            "sh", str(probe_dir)], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private mount namespace here (needs root or CAP_SYS_ADMIN): "
                    f"{probe.stderr.strip()}")
    assert not any(probe_dir.iterdir()), "the probe mount leaked out of its namespace"

    def run(script: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        mnt = tmp_path_factory.mktemp("smallfs")
        full = f'mount -t tmpfs -o size={SIZE} tmpfs "$1" || exit 97\n{script}'
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
        return subprocess.run(["unshare", "-m", "sh", "-c", full, "sh", str(mnt), *args], capture_output=True,
                              text=True, timeout=timeout, cwd=REPO, env=env)

    return run


def _input_stamps(bag: Path) -> list[int]:
    from perception.sources.bag import BagSource

    with BagSource(bag) as source:
        return [frame.header.stamp_ns for frame in source]


def _read_back(bag: Path) -> tuple[dict[int, set[str]], dict[str, int]]:
    """{header stamp: topics with a message of that stamp}, {topic: messages}; every message deserialised."""
    from rosbags.highlevel import AnyReader

    frames: dict[int, set[str]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    with AnyReader([bag]) as reader:
        for conn, _, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            header = getattr(msg, "header", None) or getattr(getattr(msg, "image", None), "header", None)
            stamp = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
            frames[stamp].add(conn.topic)
            counts[conn.topic] += 1
    return dict(frames), dict(counts)


def _metadata_counts(bag: Path) -> dict[str, int]:
    import yaml

    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    return {t["topic_metadata"]["name"]: int(t["message_count"]) for t in info["topics_with_message_count"]
            if int(t["message_count"])}


@pytest.mark.parametrize("suffix", [".mcap", ".db3"], ids=["mcap", "sqlite3"])
def test_replay_into_a_full_disk_stops_clearly_and_keeps_what_was_written(small_fs, euroc_bag, tmp_path, suffix):
    saved = tmp_path / "saved"
    saved.mkdir()
    script = ('out="$1/out$4"\n'
              '"$2" -m perception replay "$3" --out "$out"\nrc=$?\n'
              'cp -a "$out" "$5/" || exit 98\nexit $rc\n')
    r = small_fs(script, sys.executable, str(euroc_bag), suffix, str(saved))
    assert r.returncode not in (97, 98), f"setup failed (rc {r.returncode}):\n{r.stderr[-2000:]}"
    out_file = f"out{suffix}/out_0{suffix}"

    # detected and reported: non-zero exit, one error line naming the output file and the full disk
    assert r.returncode != 0, f"replay exited 0 although the disk filled:\n{r.stderr[-2000:]}"
    errors = [line for line in r.stderr.splitlines() if "error" in line.lower()]
    assert errors, r.stderr[-2000:]
    assert any(out_file in e and ("No space left" in e or "disk is full" in e) for e in errors), errors
    assert any("free disk space" in e for e in errors), errors  # what to do
    assert "Traceback" not in r.stderr, r.stderr[-3000:]

    # nothing durable lost: the bag opens, every message reads, metadata counts exactly what is there
    bag = saved / f"out{suffix}"
    frames, counts = _read_back(bag)
    assert counts == _metadata_counts(bag)

    # the complete frames are a prefix of the input frames; only the frame being written may be partial
    inputs = _input_stamps(euroc_bag)
    assert set(frames) <= set(inputs)
    all_topics = frames[inputs[0]]
    assert {"/perception/left/image_rect", "/perception/disparity", "/perception/map/costmap"} <= all_topics
    complete = [s for s in inputs if frames.get(s) == all_topics]
    assert complete, f"not one complete frame survived: {frames}"
    assert complete == inputs[: len(complete)], "a complete frame after a missing one"
    partial = [s for s in frames if s not in complete]
    assert len(partial) <= 1 and all(s == inputs[len(complete)] for s in partial), partial
    assert len(complete) < len(inputs), "the disk did not fill: make SIZE smaller"
