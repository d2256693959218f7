"""`perception demo --viewer` and `perception replay --viewer`: the flags, the URL on stderr, clean exits."""
from __future__ import annotations

import socket

import pytest

from perception.cli import build_parser, main


def test_viewer_flags_have_help_and_loopback_defaults():
    parser = build_parser()
    # the demo serves the viewer unless told not to (DESIGN.md); replay only when asked
    for argv, on in ((["demo"], True), (["replay", "in.mcap", "--out", "o"], False)):
        args = parser.parse_args(argv)
        assert (args.viewer, args.viewer_host, args.viewer_port) == (on, "127.0.0.1", None)
    assert parser.parse_args(["demo", "--no-viewer"]).viewer is False
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for verb in ("demo", "replay"):
        helps = {a.dest: a.help for a in sub[verb]._actions}
        for dest in ("viewer", "viewer_host", "viewer_port"):
            assert helps[dest] and "not built" not in helps[dest]
    assert parser.parse_args(["demo", "--viewer-hold"]).viewer_hold


def test_demo_with_viewer_prints_the_url_and_exits(tmp_path, capsys):
    rc = main(["demo", "--frames", "2", "--size", "320x240", "--out", str(tmp_path / "demo.mcap"),
               "--viewer-port", "0"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "live viewer on http://127.0.0.1:" in err
    assert "detections: " in err and "per frame" in err  # every stage ran, detection included


def test_demo_viewer_port_in_use_is_a_clear_error(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc = main(["demo", "--frames", "1", "--size", "320x240", "--out", str(tmp_path / "d.mcap"),
                   "--viewer-port", str(port)])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"port {port} is already in use" in err and "--viewer-port 0" in err
    assert not (tmp_path / "d.mcap").exists()  # nothing was run


def test_demo_takes_another_port_when_the_default_one_is_taken(tmp_path, capsys):
    from perception.viewer.cli import DEFAULT_PORT

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", DEFAULT_PORT))
        except OSError:
            pass  # already taken by something else: the same situation
        s.listen()
        rc = main(["demo", "--frames", "1", "--size", "320x240", "--out", str(tmp_path / "d.mcap")])
    err = capsys.readouterr().err
    assert rc == 0, err
    url = err.split("live viewer on ")[1].split()[0]
    assert url.startswith("http://127.0.0.1:") and f":{DEFAULT_PORT}/" not in url


def test_replay_with_viewer(data_dir, tmp_path, capsys):
    bag = data_dir / "euroc_stereo_bag"
    if not bag.exists():
        pytest.skip(f"{bag} is missing")
    rc = main(["replay", str(bag), "--out", str(tmp_path / "o.mcap"), "--viewer", "--viewer-port", "0"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "live viewer on http://127.0.0.1:" in err


def test_demo_viewer_hold_serves_until_ctrl_c(tmp_path):
    import json
    import queue
    import re
    import signal
    import subprocess
    import sys
    import threading
    import time
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "perception.cli", "demo", "--frames", "2", "--size", "320x240", "--out",
         str(tmp_path / "demo.mcap"), "--viewer-port", "0", "--viewer-hold", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell that starts us in the background hands SIGINT down ignored; Ctrl-C must reach the demo
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        url = None
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if "Ctrl-C to stop" in line:
                url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
                break
        assert url, "the demo did not say it holds the viewer"
        with urllib.request.urlopen(url + "api/stats", timeout=10) as r:
            stats = json.load(r)
        assert stats["published"] == 2  # the run is over, the page still has its last frame
        proc.send_signal(signal.SIGINT)
        proc.wait(60)  # stdout holds one JSON line: the pipe cannot fill before the exit
        out = proc.stdout.read()
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    err = "".join(lines.get_nowait() for _ in range(lines.qsize()))
    assert proc.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["used"] == 2
