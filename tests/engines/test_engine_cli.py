"""`perception engines list|verify|build` on a temporary models folder ($PERCEPTION_ENGINES)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from perception.cli import main
from perception.engines.cache import BuildConfig, PlanHeader, PlanKey, write_plan
from perception.engines.catalog import resolve_models, shipped_models_dir
from perception.engines.model_file import sha256_of
from perception.errors import ModelError


@pytest.fixture
def models(tmp_path, monkeypatch, make_tiny_conv, engine_cache):
    """A models folder with a float and a Q/DQ model, set as $PERCEPTION_ENGINES."""
    folder = tmp_path
    make_tiny_conv("scene_tiny.onnx", name="scene_tiny")
    make_tiny_conv("scene_int8.onnx", name="scene_int8", qdq=True)
    monkeypatch.setenv("PERCEPTION_ENGINES", str(folder))
    return folder


def _json_tail(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def _plan(cache: Path, model: Path, name: str, trt_version: str = "10.3.0", header: bool = True) -> Path:
    key = PlanKey(sha256_of(model), trt_version, "sm87", "fp16", BuildConfig(flags=("fp16",)).config_hash())
    path = key.plan_path(cache, name)
    write_plan(path, b"PLAN", PlanHeader(key, name, str(model), "Orin", "2025-01-01T00:00:00+00:00"))
    if not header:
        path.with_suffix(".json").unlink()
    return path


def test_shipped_models_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PERCEPTION_ENGINES", str(tmp_path))
    assert shipped_models_dir() == tmp_path
    monkeypatch.delenv("PERCEPTION_ENGINES")
    repo = Path(__file__).resolve().parents[2]
    assert shipped_models_dir() == repo / "engines"  # a source / editable checkout


def test_list_json_shows_models_and_plans(models, engine_cache, capsys):
    plan = _plan(engine_cache, models / "scene_tiny.onnx", "scene_tiny")
    assert main(["engines", "list", "--json"]) == 0
    result = _json_tail(capsys)
    assert result["models_dir"] == str(models) and result["cache_dir"] == str(engine_cache)
    rows = {m["name"]: m for m in result["models"]}
    assert set(rows) == {"scene_tiny", "scene_int8"}
    assert rows["scene_tiny"]["task"] == "scene" and rows["scene_tiny"]["input"]["shape"] == [1, 3, 8, 8]
    assert rows["scene_tiny"]["classes"] == ["road", "sky"]
    assert rows["scene_tiny"]["sha256"] == sha256_of(models / "scene_tiny.onnx")[:12]
    assert (rows["scene_tiny"]["precision"], rows["scene_int8"]["precision"]) == ("fp32", "int8")
    [listed] = result["plans"]
    assert listed["path"] == str(plan) and listed["header"]["key"]["trt_version"] == "10.3.0"
    if importlib.util.find_spec("tensorrt") is None:
        assert listed["current"] is None and "cannot tell" in listed["reason"]


def test_list_text_marks_a_broken_model_without_failing(models, capsys):
    (models / "broken.onnx").write_bytes(b"\x00not onnx")
    assert main(["engines", "list"]) == 0
    out = capsys.readouterr().out
    assert "scene_tiny" in out and "[1, 3, 8, 8]" in out and "road, sky" in out
    assert "broken" in out and "ERROR" in out and "not a readable ONNX model" in out


def test_verify_passes_good_models(models, capsys):
    assert main(["engines", "verify", "--json"]) == 0
    result = _json_tail(capsys)
    assert result["ok"] is True and result["checked"] == 2 and result["failures"] == []
    assert {r["name"]: r["precision"] for r in result["models"]} == {"scene_tiny": "fp32", "scene_int8": "int8"}


def test_verify_fails_listing_each_problem(models, engine_cache, capsys):
    (models / "broken.onnx").write_bytes(b"\x00not onnx")
    _plan(engine_cache, models / "scene_tiny.onnx", "scene_tiny", header=False)
    assert main(["engines", "verify"]) == 1
    out = capsys.readouterr().out
    assert "FAIL broken" in out and "not a readable ONNX model" in out
    assert "ok   scene_tiny" in out and "ok   scene_int8" in out
    assert "no header" in out and "2 failures" in out


def test_verify_one_model_by_name_or_path(models, capsys):
    assert main(["engines", "verify", "scene_tiny", "--json"]) == 0
    assert [r["name"] for r in _json_tail(capsys)["models"]] == ["scene_tiny"]
    assert main(["engines", "verify", str(models / "scene_int8.onnx"), "--json"]) == 0
    assert [r["name"] for r in _json_tail(capsys)["models"]] == ["scene_int8"]


def test_verify_an_unknown_name_exits_2_with_the_known_ones(models, capsys):
    assert main(["engines", "verify", "nosuchmodel"]) == 2
    err = capsys.readouterr().err
    assert "nosuchmodel" in err and "scene_int8, scene_tiny" in err


def test_resolve_models_without_any(tmp_path, monkeypatch):
    monkeypatch.setenv("PERCEPTION_ENGINES", str(tmp_path))
    with pytest.raises(ModelError, match="no .onnx models found") as info:
        resolve_models([])
    assert "PERCEPTION_ENGINES" in str(info.value)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_build_without_tensorrt_exits_nonzero_naming_what_is_missing(models, engine_cache, capsys):
    assert main(["engines", "build", "--precision", "fp16"]) == 2
    err = capsys.readouterr().err
    assert "needs TensorRT" in err and "'tensorrt' is not installed" in err
    assert "pip install perception[gpu]" in err and "nothing was built" in err
    assert list(engine_cache.iterdir()) == []  # no fallback plan, no partial files


def test_verbs_have_help_and_are_no_longer_stubs(capsys):
    for verb in ("list", "verify", "build"):
        with pytest.raises(SystemExit) as info:
            main(["engines", verb, "--help"])
        assert info.value.code == 0
        assert "not built yet" not in capsys.readouterr().out

