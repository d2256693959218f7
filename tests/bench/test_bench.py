"""`perception bench --json`: the full pipeline benchmark, a short real run (no mocks), and its argument checks."""
from __future__ import annotations

import json
import os

import pytest

from perception.cli import build_parser, main

PIPELINE_STAGES = {"rectify", "disparity", "scene", "points", "ground", "labels", "bands", "features", "map"}


def _last_json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    assert out, "nothing on stdout"
    return json.loads(out[-1])


def _positive(d: dict, *keys: str) -> None:
    for k in keys:
        assert isinstance(d[k], (int, float)) and d[k] > 0, (k, d[k])


def test_bench_json_has_the_contract_keys(capsys):
    assert main(["bench", "--json", "--frames", "2", "--warmup", "1", "--distinct", "2"]) == 0
    r = _last_json(capsys)
    _positive(r, "fps_320", "fps_640", "latency_p50_ms", "latency_p99_ms", "peak_rss_mb")
    assert r["latency_p50_ms"] <= r["latency_p99_ms"]
    assert PIPELINE_STAGES <= set(r["stages_ms"]), r["stages_ms"]
    assert all(isinstance(v, float) and v >= 0 for v in r["stages_ms"].values())
    assert r["stages"] == sorted(r["stages_ms"])
    assert r["backend"] == "onnxruntime" and r["precision"] == "fp32"
    assert r["cores"]["cpu_count"] >= r["cores"]["affinity"] >= 1
    assert r["sizes"]["640x480"]["frames"] == 2 and r["sizes"]["640x480"]["frames_failed"] == 0
    assert r["overlap"] == 1 and r["sizes"]["640x480"]["overlap"] == 1  # the product's way: overlapped
    sequential = r["sizes"]["640x480"]["sequential"]
    assert sequential["frames"] == 2 and sequential["stages_ms"] == r["stages_ms"]
    assert {"detect", "track"} <= set(r["stages_ms"])
    slow_far = r["long_range_every_n"]
    assert slow_far["every_n_frames"] == 2 and slow_far["fps_640"] > 0 and slow_far["fps_320"] > 0

    base = r["baseline"]
    _positive(base, "fps_320", "fps_640", "latency_p50_ms")
    assert set(base["stages_ms"]) == {"rectify", "disparity"}
    assert base["fps_640"] > r["fps_640"]  # the front end alone is a part of the full pipeline's work

    i8 = r["int8"]
    assert i8["models"]["features"]["quantized"] and i8["engines"]["features"]["precision"] == "int8"
    assert i8["engines"]["scene"]["precision"] == ("int8" if i8["models"]["scene"]["quantized"] else "fp32")
    _positive(i8, "fps", "speedup_vs_fp32")
    assert "disparity" in i8["stages_without_network"] and "features" not in i8["stages_without_network"]

    e = r["euroc"]
    if os.environ.get("PERCEPTION_DATA"):
        assert e["skipped"] is False and e["size"] == "752x480" and e["frames_failed"] == 0
        _positive(e, "fps", "latency_p50_ms")
        assert e["stages_ms"]["rectify"] > 0  # raw frames: rectification really runs
        _positive(e["baseline"], "fps")
    else:
        assert e["skipped"] is True and "PERCEPTION_DATA" in e["note"]


def test_bench_without_data_notes_the_skip(capsys, monkeypatch):
    monkeypatch.delenv("PERCEPTION_DATA", raising=False)
    assert main(["bench", "pipeline", "--json", "--frames", "1", "--warmup", "0", "--sizes", "320x240",
                 "--distinct", "1", "--no-int8"]) == 0
    r = _last_json(capsys)
    assert r["euroc"] == {"skipped": True, "note": "skipped: PERCEPTION_DATA is not set"}
    assert r["main_size"] == "320x240" and r["fps_320"] > 0 and "fps_640" not in r and "int8" not in r


def test_bench_pipeline_is_the_plain_form():
    parser = build_parser()
    plain = parser.parse_args(["bench", "--frames", "3"])
    alias = parser.parse_args(["bench", "pipeline", "--frames", "3"])
    assert plain.func is alias.func and plain.frames == alias.frames == 3
    assert parser.parse_args(["bench", "engines"]).func is not plain.func


@pytest.mark.parametrize("argv, named", [
    (["--sizes", "640by480"], "'640by480'"),
    (["--frames", "0"], "--frames"),
    (["--warmup", "-1"], "--warmup"),
    (["--threads", "0"], "--threads"),
])
def test_bad_arguments_are_named(argv, named, capsys):
    assert main(["bench", "--json", *argv]) == 2
    captured = capsys.readouterr()
    assert named in captured.err and captured.out == ""
