"""Security: the viewer serves only its own files to loopback, and nothing loads a pickle.

tests/viewer/test_server.py already covers the loopback default, `../` and `%2e%2e` traversal, foreign Host and
Origin, and the methods POST/PUT/DELETE/PATCH/OPTIONS. Added here: the socket is bound to 127.0.0.1 only (another
loopback address is refused), symlinks in the static folder, absolute-form and double-encoded request targets,
backslashes, overlong UTF-8, TRACE/CONNECT/unknown methods; and the weights side: a .npz holding a pickled object
array is refused by every .npz reader WITHOUT running the pickle (a payload that would create a file proves it),
and a .pt/.pkl given as a model is refused by name.
"""
from __future__ import annotations

import asyncio
import pickle
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from perception.errors import ModelError
from perception.viewer.server import STATIC_DIR, Viewer
from tests.viewer.test_server import get, raw_request


def _port(viewer: Viewer) -> int:
    return int(viewer.url.rsplit(":", 1)[1].strip("/"))


@pytest.fixture(scope="module")
def viewer_with_links(tmp_path_factory):
    """A viewer whose static folder also holds symlinks to a secret file and to a folder outside it."""
    root = tmp_path_factory.mktemp("viewer")
    static = root / "static"
    shutil.copytree(STATIC_DIR, static)
    secret = root / "secret.js"
    secret.write_text("SECRET-CONTENT")
    (static / "linked.js").symlink_to(secret)
    (static / "etc").symlink_to("/etc")
    (static / "passwd.css").symlink_to("/etc/passwd")
    v = Viewer(port=0, static_dir=static).start()
    yield v
    v.stop()


def test_the_socket_is_bound_to_127_0_0_1_only(viewer_with_links):
    port = _port(viewer_with_links)
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    with pytest.raises(OSError):  # bound to 0.0.0.0 this would connect: 127.0.0.2 is on lo too
        socket.create_connection(("127.0.0.2", port), timeout=2).close()


@pytest.mark.parametrize("path", ["/static/linked.js", "/static/passwd.css", "/static/etc/passwd", "/static/etc"])
def test_symlinks_in_the_static_folder_are_not_followed(viewer_with_links, path):
    status, body = get(_port(viewer_with_links), path)
    assert status == 404, (path, status)
    assert b"SECRET" not in body and b"root:" not in body


def test_its_own_files_are_still_served(viewer_with_links):
    status, body = get(_port(viewer_with_links), "/static/viewer.js")
    assert status == 200 and body == (STATIC_DIR / "viewer.js").read_bytes()


@pytest.mark.parametrize("target", [
    "/etc/passwd", "//etc/passwd", "/static//../../etc/passwd", "/static/%252e%252e/%252e%252e/etc/passwd",
    "/static/..%5c..%5cetc%5cpasswd", "/static/..\\..\\etc\\passwd", "/static/%c0%ae%c0%ae/etc/passwd",
    "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/static/./viewer.js/../../../etc/passwd", "/static/%00",
    "/static/linked.js%2f..%2f..%2fsecret.js", "/%2fetc%2fpasswd", "/api/stats/../../etc/passwd",
])
def test_traversal_targets_are_refused(viewer_with_links, target):
    status, body = get(_port(viewer_with_links), target)
    assert status in (400, 403, 404), (target, status)
    assert b"root:" not in body and b"SECRET" not in body


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/static/../../etc/passwd",
                                    "http://127.0.0.1:{port}/../secret.js", "../../etc/passwd", "*"])
def test_absolute_form_and_odd_request_targets_are_refused(viewer_with_links, target):
    port = _port(viewer_with_links)
    req = f"GET {target.format(port=port)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    status, body = asyncio.run(raw_request(port, req.encode()))
    assert status in (400, 403, 404), (target, status)
    assert b"root:" not in body and b"SECRET" not in body


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "FOO"])
def test_methods_it_does_not_serve_are_rejected(viewer_with_links, method):
    status, body = get(_port(viewer_with_links), "/", method=method)
    assert status in (400, 403, 405, 501), (method, status)  # CONNECT: its target is no loopback host
    assert b"<html" not in body.lower()


def test_head_is_answered_without_a_body(viewer_with_links):
    status, body = get(_port(viewer_with_links), "/static/viewer.js", method="HEAD")
    assert status == 200 and body == b""


# --- weights: no pickle ever -----------------------------------------------------------------------------------------
class _Payload:
    """Unpickling this creates `marker`: proof that a reader ran the pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _pickled_npz(path: Path, marker: Path, **arrays) -> Path:
    obj = np.empty(1, dtype=object)
    obj[0] = _Payload(marker)
    with open(path, "wb") as fh:
        np.savez(fh, payload=obj, **arrays)  # np.savez pickles object arrays
    assert b"touch" in path.read_bytes() or pickle.dumps(obj)  # the payload is in the file
    return path


def _defaults(path, marker):
    from perception.terrain.defaults import FORMAT, load_defaults

    _pickled_npz(path, marker, format=np.array(FORMAT), weights=np.zeros((5, 100), np.float32),
                 bias=np.zeros(5, np.float32), feature_model_sha256=np.array("0" * 64), trained_on=np.array(""))
    return lambda: load_defaults(path)


def _classifier(path, marker):
    from perception.terrain.classifier import OnlineClassifier

    _pickled_npz(path, marker, format=np.array("x"))
    return lambda: OnlineClassifier.load(path)


def _npz_reader(path, marker):
    from perception.terrain.classifier_io import read_npz

    _pickled_npz(path, marker)
    return lambda: read_npz(path)


@pytest.mark.parametrize("make", [_defaults, _classifier, _npz_reader], ids=["defaults", "classifier", "read_npz"])
def test_a_npz_with_a_pickled_object_array_is_refused_and_not_run(tmp_path, make):
    marker = tmp_path / "pwned"
    load = make(tmp_path / "weights.npz", marker)
    with pytest.raises(ModelError) as info:
        load()
    assert "weights.npz" in str(info.value) and "pickle" in str(info.value).lower()
    assert not marker.exists(), "the pickle in the file was executed"


def test_the_detection_training_cache_does_not_unpickle(tmp_path):
    from perception.detect.cache import load_sim_cache

    marker = tmp_path / "pwned"
    path = _pickled_npz(tmp_path / "cache.npz", marker)
    with pytest.raises(Exception):  # noqa: B017 - numpy's own refusal (ValueError), not ours
        load_sim_cache([path])
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl", ".ckpt"])
def test_a_pickle_or_torch_checkpoint_given_as_a_model_is_refused_unread(tmp_path, suffix):
    from perception.engines import open_engine

    marker = tmp_path / "pwned"
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelError) as info:
        open_engine(path)
    text = str(info.value)
    assert str(path) in text and "nothing is ever unpickled" in text and "ONNX" in text
    assert not marker.exists()
