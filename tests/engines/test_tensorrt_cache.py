"""The TensorRT plan cache without TensorRT: keys, headers, stale-plan decisions, cache folder."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from perception.engines.cache import (BuildConfig, Machine, PlanHeader, PlanKey, decide_plan, default_cache_dir,
                                      header_path, list_plans, plan_currency, read_header, write_plan)
from perception.errors import EngineError

KEY = PlanKey(model_sha256="ab" * 32, trt_version="10.3.0", compute_capability="sm87", precision="fp16",
              config_hash=BuildConfig(flags=("fp16",)).config_hash())


def _header(key: PlanKey = KEY, gpu: str = "Orin", model_path: str = "/nonexistent/tiny.onnx") -> PlanHeader:
    return PlanHeader(key=key, model_name="tiny", model_path=model_path, gpu_name=gpu,
                      built_at="2025-01-01T00:00:00+00:00", build_seconds=12.5)


def _store(cache: Path, header: PlanHeader | None = None, key: PlanKey = KEY, plan: bytes = b"PLAN") -> Path:
    path = key.plan_path(cache, "tiny")
    write_plan(path, plan, header or _header(key))
    return path


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PERCEPTION_ENGINE_CACHE", str(tmp_path / "plans"))
    assert default_cache_dir() == tmp_path / "plans"
    monkeypatch.delenv("PERCEPTION_ENGINE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "perception" / "engines"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "perception" / "engines"


@pytest.mark.parametrize("field, value", [
    ("model_sha256", "cd" * 32), ("trt_version", "10.4.0"), ("compute_capability", "sm86"),
    ("precision", "int8"), ("config_hash", BuildConfig(flags=("fp16",), workspace_mb=2048).config_hash()),
])
def test_every_key_field_changes_the_digest_and_the_file(field, value):
    other = dataclasses.replace(KEY, **{field: value})
    assert other.digest() != KEY.digest()
    assert other.plan_path("/c", "tiny") != KEY.plan_path("/c", "tiny")


def test_key_is_stable_and_the_file_name_is_readable():
    same = PlanKey(**dataclasses.asdict(KEY))
    assert same.digest() == KEY.digest()
    path = KEY.plan_path("/cache", "scene net/v2")
    assert path.parent == Path("/cache") and path.suffix == ".plan"
    assert path.name.startswith("scene_net_v2-fp16-") and "/" not in path.name


def test_builder_config_hash():
    assert BuildConfig(flags=("int8", "fp16")).config_hash() == BuildConfig(flags=("fp16", "int8")).config_hash()
    assert BuildConfig(flags=("fp16",)).config_hash() != BuildConfig().config_hash()
    assert BuildConfig(optimization_level=5).config_hash() != BuildConfig().config_hash()


def test_header_round_trip_beside_the_plan(tmp_path):
    path = _store(tmp_path)
    assert path.read_bytes() == b"PLAN"
    assert header_path(path) == path.with_suffix(".json")
    assert read_header(path) == _header()
    data = json.loads(header_path(path).read_text())
    assert data["key"]["trt_version"] == "10.3.0" and data["gpu_name"] == "Orin" and data["built_at"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, path.with_suffix(".json").name])


def test_read_header_refuses_missing_and_corrupt(tmp_path):
    plan = tmp_path / "x.plan"
    plan.write_bytes(b"PLAN")
    with pytest.raises(EngineError, match="no header"):
        read_header(plan)
    header_path(plan).write_text("{not json")
    with pytest.raises(EngineError, match="unreadable header"):
        read_header(plan)
    header_path(plan).write_text(json.dumps({"key": {}}))
    with pytest.raises(EngineError, match="unreadable header"):
        read_header(plan)


def test_decide_builds_when_nothing_is_cached_and_loads_a_current_plan(tmp_path):
    first = decide_plan(KEY.plan_path(tmp_path, "tiny"), KEY, gpu_name="Orin")
    assert (first.action, first.warn) == ("build", False)  # a first build is news, not a problem
    path = _store(tmp_path)
    again = decide_plan(path, KEY, gpu_name="Orin")
    assert again.action == "load" and "2025-01-01" in again.reason
    forced = decide_plan(path, KEY, gpu_name="Orin", force=True)
    assert forced.action == "build" and "force" in forced.reason


@pytest.mark.parametrize("field, value, words", [
    ("trt_version", "10.0.1", "built with TensorRT 10.0.1, this machine has 10.3.0"),
    ("compute_capability", "sm86", "built for sm86, this GPU is sm87"),
    ("model_sha256", "cd" * 32, "the model changed"),
    ("precision", "fp32", "built at fp32, fp16 is wanted"),
    ("config_hash", "0" * 16, "other builder settings"),
])
def test_a_mismatched_header_means_rebuild_with_a_warning(tmp_path, field, value, words):
    path = KEY.plan_path(tmp_path, "tiny")
    write_plan(path, b"PLAN", _header(dataclasses.replace(KEY, **{field: value})))  # e.g. copied from another box
    decision = decide_plan(path, KEY, gpu_name="Orin")
    assert (decision.action, decision.warn) == ("build", True)
    assert "stale" in decision.reason and words in decision.reason


def test_another_gpu_model_with_the_same_compute_capability_is_stale(tmp_path):
    path = _store(tmp_path, _header(gpu="RTX A6000"))
    decision = decide_plan(path, KEY, gpu_name="GeForce RTX 3090")
    assert decision.action == "build" and "built on RTX A6000, this GPU is GeForce RTX 3090" in decision.reason


@pytest.mark.parametrize("damage, words", [
    (lambda p: header_path(p).unlink(), "no header"),
    (lambda p: header_path(p).write_text("garbage"), "unreadable header"),
    (lambda p: p.write_bytes(b""), "empty"),
])
def test_a_broken_cache_entry_means_rebuild_with_a_warning(tmp_path, damage, words):
    path = _store(tmp_path)
    damage(path)
    decision = decide_plan(path, KEY, gpu_name="Orin")
    assert (decision.action, decision.warn) == ("build", True) and words in decision.reason


def test_list_plans_says_what_is_current_here(tmp_path, tiny_conv):
    from perception.engines.model_file import sha256_of

    key = dataclasses.replace(KEY, model_sha256=sha256_of(tiny_conv.path))
    current = _store(tmp_path, _header(key, model_path=str(tiny_conv.path)), key=key)
    old_trt = dataclasses.replace(key, trt_version="10.0.1")
    stale = _store(tmp_path, _header(old_trt, model_path=str(tiny_conv.path)), key=old_trt)
    orphan = tmp_path / "lost-fp32-0000.plan"
    orphan.write_bytes(b"PLAN")

    here = {p.path: p for p in list_plans(tmp_path, Machine("10.3.0", "sm87", "Orin"))}
    assert here[current].current is True
    assert here[stale].current is False and "TensorRT 10.0.1" in here[stale].reason
    assert here[orphan].current is False and here[orphan].header is None and "no header" in here[orphan].reason
    unknown = {p.path: p for p in list_plans(tmp_path, Machine())}
    assert unknown[current].current is None and "cannot tell" in unknown[current].reason
    assert list_plans(tmp_path / "absent", Machine()) == []


def test_a_changed_model_makes_its_plans_stale(tmp_path, tiny_conv):
    header = _header(model_path=str(tiny_conv.path))  # KEY's hash is not this file's
    current, reason = plan_currency(header, Machine())
    assert current is False and "tiny.onnx changed" in reason
