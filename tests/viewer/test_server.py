"""perception.viewer.server: routes, loopback default, nothing but its own files, frames, drop counting."""
from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time

import aiohttp
import cv2
import numpy as np
import pytest

from perception.frame import Header
from perception.viewer.frames import parse_frame
from perception.viewer.server import Viewer, ViewerError


@pytest.fixture
def viewer():
    v = Viewer(port=0).start()
    yield v
    v.stop()


def stamped(result, i: int):
    return dataclasses.replace(result, header=Header(i, result.header.frame_id))


async def raw_request(port: int, request: bytes, timeout_s: float = 10.0) -> tuple[int, bytes]:
    """Send `request` byte for byte (no client-side path normalisation) and return (status, body)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout_s)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(-1), timeout_s)
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def get(port: int, path: str, host: str = "127.0.0.1", method: str = "GET") -> tuple[int, bytes]:
    req = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    return asyncio.run(raw_request(port, req.encode()))


def wait_until(predicate, timeout_s: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        threading.Event().wait(0.01)  # polling with a deadline
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_binds_loopback_by_default():
    v = Viewer(port=0)
    assert v.host == "127.0.0.1"
    with v:
        assert v.url.startswith("http://127.0.0.1:") and v.url.endswith("/")
        port = int(v.url.rsplit(":", 1)[1].strip("/"))
        assert port > 0
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    with pytest.raises(OSError):  # stopped: nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_port_in_use_names_the_port_and_what_to_do():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ViewerError) as err:
            Viewer(port=port).start()
    text = str(err.value)
    assert f"port {port} is already in use" in text and "--viewer-port" in text


def test_bad_parameters_are_refused():
    with pytest.raises(ViewerError, match="outside 0..65535"):
        Viewer(port=70000)
    with pytest.raises(Exception, match="unknown layer"):
        Viewer(layers=("nope",))


def test_own_routes_are_served(viewer):
    port = int(viewer.url.rsplit(":", 1)[1].strip("/"))

    async def main():
        async with aiohttp.ClientSession() as s:
            async with s.get(viewer.url) as r:
                assert r.status == 200 and r.content_type == "text/html"
                assert "viewer.js" in await r.text()
                assert "default-src 'self'" in r.headers["Content-Security-Policy"]
                assert r.headers["X-Content-Type-Options"] == "nosniff"
            for name, kind in (("viewer.js", "text/javascript"), ("viewer.css", "text/css")):
                async with s.get(viewer.url + "static/" + name) as r:
                    assert r.status == 200 and r.content_type == kind
            async with s.get(viewer.url + "api/stats") as r:
                stats = await r.json()
                assert stats["published"] == 0 and stats["clients"] == 0
    asyncio.run(main())
    assert get(port, "/")[0] == 200


@pytest.mark.parametrize("path", [
    "/static/../server.py", "/static/..%2fserver.py", "/static/%2e%2e%2fserver.py", "/static/%2e%2e/server.py",
    "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/static/....//server.py", "/static/__init__.py",
    "/static/", "/static", "/static/.", "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/server.py",
    "/perception/viewer/server.py", "/static/viewer.js/..", "/static/viewer.js%00.html", "/api", "/ws/..",
    "/static/VIEWER.JS", "/.git/config",
])
def test_nothing_else_is_served(viewer, path):
    port = int(viewer.url.rsplit(":", 1)[1].strip("/"))
    status, body = get(port, path)
    assert status == 404, (path, status)
    assert b"import " not in body and b"root:" not in body and b"<li>" not in body


@pytest.mark.parametrize("method,path", [("POST", "/"), ("PUT", "/static/viewer.js"), ("DELETE", "/api/stats"),
                                         ("PATCH", "/ws"), ("OPTIONS", "/")])
def test_only_get(viewer, method, path):
    port = int(viewer.url.rsplit(":", 1)[1].strip("/"))
    assert get(port, path, method=method)[0] == 405


def test_foreign_host_and_origin_are_refused(viewer):
    port = int(viewer.url.rsplit(":", 1)[1].strip("/"))
    assert get(port, "/", host="attacker.example")[0] == 403  # DNS rebinding
    assert get(port, "/", host="localhost")[0] == 200

    async def main():
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await s.ws_connect(viewer.url + "ws", origin="http://attacker.example")
            assert err.value.status == 403
    asyncio.run(main())


def test_frames_carry_the_image_each_layer_the_map_and_timing(viewer, drive_results):
    r = drive_results[-1]
    viewer.publish(r)

    async def main():
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(viewer.url + "ws") as ws:
                hello = await ws.receive_json(timeout=10)
                assert hello["type"] == "hello" and "labels" in hello["layers"]
                await ws.send_str("next")
                msg = await ws.receive(timeout=30)
                return msg.data
    head, parts = parse_frame(asyncio.run(main()))
    assert head["seq"] == 1 and head["stamp_ns"] == r.header.stamp_ns and head["frame_id"] == r.header.frame_id
    assert (head["width"], head["height"]) == (640, 480)
    assert set(head["layers"]) >= {"labels", "terrain", "disparity"}
    assert set(head["timings_ms"]) >= {"disparity", "labels", "map"} and head["total_ms"] > 0
    image = cv2.imdecode(np.frombuffer(parts["image"], np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (480, 640, 3)
    # class layers travel as their codes (lossless one-channel PNG) plus an RGBA palette the page colours them with
    labels = cv2.imdecode(np.frombuffer(parts["codes:labels"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert labels.shape == (480, 640) and np.array_equal(labels, r.near.labels.image)
    palette = np.array(head["palettes"]["labels"], np.uint8).reshape(256, 4)
    assert palette[0, 3] == 0 and tuple(palette[1]) == (0, 160, 0, 255)  # unknown transparent; super-ground
    terrain = cv2.imdecode(np.frombuffer(parts["codes:terrain"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(terrain, r.terrain.classes)
    mp = cv2.imdecode(np.frombuffer(parts["map"], np.uint8), cv2.IMREAD_COLOR)
    assert mp.shape == (400, 400, 3)
    assert head["counters"]["published"] == 1 and head["encode_ms"] > 0


def test_publishing_faster_than_the_browser_drops_viewer_frames_only(viewer, drive_results):
    results = [stamped(drive_results[i % 3], 1000 + i) for i in range(200)]

    async def main():
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(viewer.url + "ws") as ws:
                await ws.receive_json(timeout=10)
                # a client that has not asked for a frame gets nothing; every publish but the last is dropped
                for res in results[:50]:
                    viewer.publish(res)
                stats = viewer.stats()
                assert (stats["published"], stats["dropped"], stats["encoded"], stats["sent"]) == (50, 49, 0, 0)
                await ws.send_str("next")
                head, _ = parse_frame((await ws.receive(timeout=30)).data)
                assert head["stamp_ns"] == results[49].header.stamp_ns  # the latest one
                # now a pipeline thread publishes 150 more as fast as it can while this client consumes
                times = []

                def pipeline():
                    for res in results[50:]:
                        t0 = time.perf_counter()
                        viewer.publish(res)
                        times.append(time.perf_counter() - t0)

                thread = threading.Thread(target=pipeline)
                thread.start()
                seen = [head["stamp_ns"]]
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and seen[-1] != results[-1].header.stamp_ns:
                    await ws.send_str("next")
                    head, _ = parse_frame((await ws.receive(timeout=30)).data)
                    seen.append(head["stamp_ns"])
                thread.join(30)
                return seen, times
    seen, times = asyncio.run(main())
    assert seen[-1] == results[-1].header.stamp_ns  # the browser ends on the newest frame
    assert seen == sorted(seen) and len(set(seen)) == len(seen)  # in order, never the same frame twice
    stats = viewer.stats()
    assert stats["published"] == 200
    assert stats["sent"] == len(seen) < 200
    assert stats["dropped"] > 0
    assert stats["published"] == stats["dropped"] + stats["encoded"] + stats["encode_errors"] + stats["pending"]
    assert np.median(times) < 1e-3  # publish is a reference swap, not an encode (typically ~1 us)


def test_a_browser_that_connects_later_gets_the_last_frame(viewer, drive_results):
    for i, r in enumerate(drive_results):
        viewer.publish(stamped(r, 5000 + i))

    async def main():
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(viewer.url + "ws") as ws:
                await ws.receive_json(timeout=10)
                await ws.send_str("next")
                return parse_frame((await ws.receive(timeout=30)).data)[0]
    assert asyncio.run(main())["stamp_ns"] == 5000 + len(drive_results) - 1
    wait_until(lambda: viewer.stats()["clients"] == 0, what="the client to be gone")


def test_a_skipped_frame_is_shown_with_its_reason(viewer, drive_results):
    r = dataclasses.replace(drive_results[0], near=None, terrain=None, disparity=None, fused_map=None,
                            terrain_map=None, scene=None, detections=None, error="frame 0: is mono")
    viewer.publish(r)

    async def main():
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(viewer.url + "ws") as ws:
                await ws.receive_json(timeout=10)
                await ws.send_str("next")
                return parse_frame((await ws.receive(timeout=30)).data)
    head, parts = asyncio.run(main())
    assert head["error"] == "frame 0: is mono" and head["layers"] == []
    assert set(parts) == {"image", "map"}


def test_stop_is_idempotent_and_closes_browsers(drive_results):
    v = Viewer(port=0).start()
    v.publish(drive_results[0])

    async def main():
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(v.url + "ws") as ws:
                await ws.receive_json(timeout=10)
                await asyncio.get_running_loop().run_in_executor(None, v.stop)
                msg = await ws.receive(timeout=10)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    asyncio.run(main())
    v.stop()
    assert not v.running
    v.publish(drive_results[1])  # publishing to a stopped viewer is harmless
