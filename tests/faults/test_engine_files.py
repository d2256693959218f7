"""Fault: a corrupt engine file. Truncated, overwritten with garbage, or valid ONNX whose metadata lies.

Every form must be refused by `open_engine` with a ModelError that names the file and says what to do (never an
onnxruntime or protobuf traceback), `perception engines verify` must list it as a failure, and a good model opened
next in the same process must still work. The real shipped scene model is the subject (copied to tmp and damaged);
the TensorRT plan cache's stale/corrupt entries are covered by tests/engines/test_tensorrt_cache.py.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from perception.engines import open_engine
from perception.engines.metadata import METADATA_KEY, ClassInfo, Normalization
from perception.engines.model_file import DIGEST_KEY, embedded_metadata, load_model, save_model
from perception.errors import ModelError

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "engines" / "scene_camvid_farabet_single.onnx"  # the smallest shipped scene model (0.5 MB)
ACT = ("re-export or re-download", "fix the metadata")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The shipped scene model written again through the project's export path (`save_model`: with its digest)."""
    proto = onnx.load(str(SHIPPED))
    meta = embedded_metadata(proto, subject=str(SHIPPED))
    return save_model(proto, meta, tmp_path_factory.mktemp("models") / "scene.onnx")


def _copy(src: Path, tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


def _refused(path: Path) -> ModelError:
    with pytest.raises(ModelError) as info:
        open_engine(path, backend="onnxruntime")
    text = str(info.value)
    assert str(path) in text, text  # names the file
    assert any(a in text for a in ACT), text  # says what to do
    assert "Traceback" not in text
    return info.value


def _still_works(path: Path) -> None:
    """After a refusal, a good model opens and runs in the same process (nothing global was broken)."""
    with open_engine(path, backend="onnxruntime") as engine:
        spec = engine.inputs[0]
        out = engine.infer({spec.name: np.zeros(spec.shape, np.float32)})
        assert all(np.isfinite(v).all() for v in out.values())


def test_the_exported_copy_carries_a_digest_and_runs(exported):
    proto = onnx.load(str(exported))
    assert any(p.key == DIGEST_KEY for p in proto.metadata_props)
    _still_works(exported)


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.98, 0.9999])
def test_a_truncated_model_is_refused(exported, tmp_path, fraction):
    data = exported.read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    err = _refused(path)
    assert "corrupt or truncated" in str(err) or "digest" in str(err)
    _still_works(exported)


@pytest.mark.parametrize("where", [0.1, 0.35, 0.6, 0.85])
@pytest.mark.parametrize("fill", ["random", "zeros"])
def test_garbage_written_inside_the_model_is_refused(exported, tmp_path, where, fill):
    """Bytes overwritten inside the weights still parse as ONNX and would run with wrong results: the digest
    `save_model` stores catches them; anywhere else the parse or the metadata check does."""
    data = bytearray(exported.read_bytes())
    at = int(len(data) * where)
    junk = np.random.default_rng(at).integers(0, 256, 256, np.uint8).tobytes() if fill == "random" else bytes(256)
    data[at: at + 256] = junk
    path = tmp_path / "garbage.onnx"
    path.write_bytes(bytes(data))
    _refused(path)
    _still_works(exported)


def test_garbage_over_the_whole_file_and_a_foreign_file_named_onnx(tmp_path):
    path = tmp_path / "scene.onnx"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, SHIPPED.stat().st_size, np.uint8).tobytes())
    assert "not a readable ONNX model" in str(_refused(path))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(1000))  # an image renamed to .onnx
    _refused(path)


def _with_metadata(tmp_path: Path, name: str, mutate) -> Path:
    """A valid ONNX (the shipped graph, untouched) whose embedded metadata is changed by `mutate(dict)`."""
    proto = onnx.load(str(SHIPPED))
    props = {p.key: p.value for p in proto.metadata_props}
    value = mutate(json.loads(props[METADATA_KEY]))
    del proto.metadata_props[:]
    proto.metadata_props.add(key=METADATA_KEY, value=value if isinstance(value, str) else json.dumps(value))
    path = tmp_path / name
    onnx.save(proto, str(path))
    return path


def _drop_class(d):
    d["classes"] = d["classes"][:-1]
    return d


def _extra_class(d):
    d["classes"] = d["classes"] + [{"name": "ghost", "color": [1, 2, 3]}]
    return d


def _shape(d):
    d["inputs"][0]["shape"] = [1, 3, 480, 640]
    return d


def _output_name(d):
    d["outputs"][0]["name"] = "logits"
    return d


def _dtype(d):
    d["inputs"][0]["dtype"] = "uint8"
    return d


def _norm(d):
    d["inputs"][0]["normalization"]["mean"] = [0.5, 0.5]
    return d


def _zero_std(d):
    d["inputs"][0]["normalization"]["std"] = [0.2, 0.0, 0.2]
    return d


@pytest.mark.parametrize("mutate, words", [
    (_drop_class, "11 channels but the metadata names 10 classes"),
    (_extra_class, "11 channels but the metadata names 12 classes"),
    (_shape, "shape [1, 3, 360, 480] in the graph but [1, 3, 480, 640]"),
    (_output_name, "do not match the graph's"),
    (_dtype, "is float32 in the graph but uint8"),
    (_norm, "3 channels but its normalization mean has 2 values"),
    (_zero_std, "std > 0"),
    (lambda d: "{" + json.dumps(d)[:40], "not valid JSON"),
    (lambda d: {**d, "schema": 99}, "upgrade perception"),
    (lambda d: {**d, "task": "segmentation"}, "unknown task"),
], ids=["fewer-classes", "more-classes", "shape", "output-name", "dtype", "norm-length", "zero-std", "json",
        "schema", "task"])
def test_metadata_that_lies_about_the_graph_is_refused(tmp_path, mutate, words):
    path = _with_metadata(tmp_path, "lying.onnx", mutate)
    with pytest.raises(ModelError) as info:
        open_engine(path, backend="onnxruntime")
    text = str(info.value)
    assert words in text and str(path) in text, text


def test_a_lying_model_is_refused_by_the_scene_stage_before_any_frame(tmp_path):
    """What a user meets: the stage that would load it (scene parsing) refuses it at construction."""
    from perception.scene.parser import SceneParser

    path = _with_metadata(tmp_path, "scene_lies.onnx", _drop_class)
    with pytest.raises(ModelError, match="10 classes"):
        SceneParser(path, backend="onnxruntime")


def test_engines_verify_lists_every_broken_file_and_exits_1(exported, tmp_path, capsys):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(exported.read_bytes()[:1000])
    garbage = _copy(exported, tmp_path, "garbage.onnx")
    data = bytearray(garbage.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    garbage.write_bytes(bytes(data))
    lying = _with_metadata(tmp_path, "lying.onnx", _extra_class)
    good = _copy(exported, tmp_path, "good.onnx")
    from perception.cli import engines_verify  # the verb itself (the CLI's other verbs need not import)

    args = argparse.Namespace(models=[str(p) for p in (truncated, garbage, lying, good)], json=True,
                              cache_dir=tmp_path / "plans")
    code = engines_verify.run(args)
    assert code == 1
    rows = {Path(r["file"]).name: r for r in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["models"]}
    assert rows["good.onnx"]["ok"] is True
    for name, words in (("truncated.onnx", "truncated"), ("garbage.onnx", "digest"), ("lying.onnx", "12 classes")):
        assert rows[name]["ok"] is False and any(words in p for p in rows[name]["problems"]), rows[name]


def test_a_digest_does_not_hide_a_legitimate_re_export(exported, tmp_path):
    """Re-saving through save_model (e.g. after quantization or a metadata edit) writes a fresh digest."""
    model = load_model(exported)
    meta = dataclasses.replace(model.metadata, version="2",
                               classes=[ClassInfo(c.name, c.color) for c in model.metadata.classes])
    out = save_model(onnx.load(str(exported)), meta, tmp_path / "v2.onnx")
    assert load_model(out).metadata.version == "2"
    assert Normalization().scale > 0  # the default normalisation passes the new check
