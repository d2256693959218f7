"""The live overlay viewer: a small web server in its own thread that shows the latest `FrameResult` in a browser.

    viewer = Viewer()                 # 127.0.0.1:8080; port=0 picks a free port
    viewer.start()                    # returns when the socket is bound (ViewerError if it cannot be)
    print(viewer.url)
    run_offline(..., on_result=viewer.publish)
    viewer.stop()

How it keeps up without slowing the pipeline: `publish(result)` (called on the pipeline thread) only swaps a
reference under a lock and wakes the viewer's event loop — O(1), no copy, no encoding. If a newer result
arrives before the last one was encoded, the older one is dropped (counted in `dropped`). The viewer's thread
encodes the latest result only when a browser has asked for a frame (each page asks for the next frame after
drawing the last one), in a worker thread: the rectified left image as JPEG, each overlay layer as a PNG (class
codes with a palette, or RGBA; `perception.viewer.overlay`), the top-down map as PNG, and the timings as JSON.
The page blends the layers itself, so layer toggles and opacity sliders need no round trip. A slow browser gets
fewer frames; the pipeline never waits for it.

Wire format of a frame: `perception.viewer.frames`.

Security: binds 127.0.0.1 unless told otherwise; serves only its own routes (`/`, `/static/<file of its own
static folder, read once at start>`, `/ws`, `/api/stats`) to GET (and HEAD); anything else is 404 or 405
(no file system paths are ever built from a request, so no traversal and no directory listing). When bound to
a loopback address it also refuses requests whose Host is not a loopback name (DNS rebinding) and WebSocket
connections from another origin.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import ipaddress
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from perception.errors import PerceptionError
from perception.viewer import overlay as O
from perception.viewer.frames import EncodeOptions, Packet, encode_frame

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png",
                 ".svg": "image/svg+xml", ".ico": "image/x-icon"}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
                               "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'",
}


class ViewerError(PerceptionError):
    """The viewer cannot start (port in use, address not available) or was used wrongly."""


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    wants: bool = False  # asked for a frame and has not been sent one since
    last_seq: int = -1
    sending: bool = False


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _read_static(folder: Path) -> dict[str, tuple[bytes, str]]:
    """Every plain file directly in `folder` with a known type: name -> (bytes, content type)."""
    files = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            kind = CONTENT_TYPES.get(path.suffix.lower())
            if path.is_file() and not path.is_symlink() and kind is not None:
                files[path.name] = (path.read_bytes(), kind)
    if "index.html" not in files:
        raise ViewerError("the viewer's page (index.html) is missing", subject=str(folder),
                          hint="reinstall the package: perception/viewer/static/ must be installed with it")
    return files


class Viewer:
    """The live overlay web viewer (module docstring). Thread-safe `publish`; `start` / `stop` from any thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, *, layers: tuple[str, ...] = O.LAYERS,
                 jpeg_quality: int = 80, png_compression: int = 1, map_pixels: int = 400, max_clients: int = 8,
                 max_fps: float = 20.0, title: str = "perception", static_dir: Path | None = None) -> None:
        if not 0 <= int(port) <= 65535:
            raise ViewerError(f"port {port} is outside 0..65535", subject="viewer",
                              hint="0 picks any free port")
        if not 1 <= jpeg_quality <= 100:
            raise ViewerError(f"jpeg_quality {jpeg_quality} is outside 1..100", subject="viewer")
        if not 0 <= png_compression <= 9:
            raise ViewerError(f"png_compression {png_compression} is outside 0..9", subject="viewer")
        self.host = host
        self.port = int(port)
        self.layers = O._check_layers(layers)
        self.options = EncodeOptions(self.layers, int(jpeg_quality), int(png_compression), int(map_pixels))
        self.max_clients = int(max_clients)
        if not max_fps > 0:
            raise ViewerError(f"max_fps {max_fps} must be > 0", subject="viewer")
        self.max_fps = float(max_fps)  # caps the encoding work (CPU) the viewer takes from the machine
        self.title = title
        self._static = _read_static(static_dir or STATIC_DIR)
        self._lock = threading.Lock()
        self._pending: Any = None  # the latest published result not yet encoded
        self._publish_times: deque[float] = deque(maxlen=30)
        self.published = 0
        self.dropped = 0  # published results replaced by a newer one before any browser saw them
        self.encoded = 0
        self.sent = 0  # frame messages sent (summed over browsers)
        self.encode_errors = 0
        self._encode_ms: deque[float] = deque(maxlen=100)
        self._packet: Packet | None = None
        self._clients: set[_Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._wake_pending = False
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._pump_task: asyncio.Task | None = None
        self._bound_port: int | None = None

    # ------------------------------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """http://HOST:PORT/ (the bound port once started)."""
        port = self._bound_port if self._bound_port is not None else self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}/"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout_s: float = 10.0) -> "Viewer":
        """Bind and serve in a daemon thread; returns once the socket is bound. Raises ViewerError."""
        if self.running:
            return self
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._startup())
            except BaseException as err:  # noqa: BLE001 - handed to the starting thread
                failure.append(err)
                started.set()
                loop.run_until_complete(self._cleanup())
                loop.close()
                self._loop = None
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._cleanup())
                loop.close()

        self._thread = threading.Thread(target=run, name="perception-viewer", daemon=True)
        self._thread.start()
        if not started.wait(timeout_s):
            raise ViewerError(f"did not start within {timeout_s:.0f} s", subject=f"viewer {self.host}:{self.port}")
        if failure:
            self._thread.join(timeout_s)
            self._thread = None
            err = failure[0]
            if isinstance(err, PerceptionError):
                raise err
            raise self._bind_error(err) from err
        return self

    def _bind_error(self, err: BaseException) -> ViewerError:
        where = f"viewer {self.host}:{self.port}"
        code = getattr(err, "errno", None)
        if code == errno.EADDRINUSE:
            return ViewerError(f"port {self.port} is already in use", subject=where,
                               hint="stop what uses it, or choose another port with --viewer-port N "
                                    "(--viewer-port 0 picks any free port)")
        if code == errno.EACCES:
            return ViewerError(f"no permission to bind port {self.port}", subject=where,
                               hint="ports below 1024 need privileges; use --viewer-port 8080 or 0")
        if code in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or "address" in str(err).lower():
            return ViewerError(f"cannot bind address {self.host!r} ({err})", subject=where,
                               hint="use an address of this machine, e.g. --viewer-host 127.0.0.1")
        return ViewerError(f"cannot start: {err}", subject=where)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close the browsers' connections and the server; join the thread. Safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive() and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:  # the loop closed meanwhile
                pass
        thread.join(timeout_s)
        self._thread = None
        self._loop = None

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the server thread ends (or `timeout_s`); True if it has ended."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    def __enter__(self) -> "Viewer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def _startup(self) -> None:
        self._wake = asyncio.Event()
        with self._lock:
            self._wake_pending = False  # a publish while stopped may have left it set
            if self._pending is not None:
                self._wake.set()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="perception-viewer-encode")
        app = web.Application(middlewares=[self._guard], client_max_size=4096)
        app.router.add_get("/", self._index)
        app.router.add_get("/index.html", self._index)
        app.router.add_get("/static/{name}", self._static_file)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/api/stats", self._stats)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=False)
        await site.start()
        addresses = self._runner.addresses
        self._bound_port = int(addresses[0][1]) if addresses else self.port
        self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    async def _cleanup(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            try:
                await self._pump_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
            self._pump_task = None
        for client in list(self._clients):
            try:
                await client.ws.close(code=1001, message=b"viewer stopped")
            except Exception:  # noqa: BLE001 - the browser may be gone already
                pass
        self._clients.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    # ------------------------------------------------------------------------------------------ publishing
    def publish(self, result: Any) -> None:
        """Offer the pipeline's latest result (called on the pipeline thread; O(1), never blocks on a browser)."""
        now = time.perf_counter()
        with self._lock:
            if self._pending is not None:
                self.dropped += 1
            self._pending = result
            self.published += 1
            self._publish_times.append(now)
            wake = not self._wake_pending
            self._wake_pending = True
        loop = self._loop
        if wake and loop is not None:
            try:
                loop.call_soon_threadsafe(self._on_wake)
            except RuntimeError:  # stopped: the result stays pending, nothing else to do
                pass

    __call__ = publish  # so a Viewer can be passed as `on_result` directly

    def _on_wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        if self._wake is not None:
            self._wake.set()

    def pipeline_fps(self) -> float:
        with self._lock:
            times = list(self._publish_times)
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def stats(self) -> dict:
        """Counters: published, encoded, sent, dropped, encode_errors, clients; encode time (ms); pipeline fps."""
        with self._lock:
            out = {"published": self.published, "encoded": self.encoded, "sent": self.sent, "dropped": self.dropped,
                   "pending": int(self._pending is not None), "encode_errors": self.encode_errors,
                   "clients": len(self._clients)}
            enc = list(self._encode_ms)
        out["encode_ms_mean"] = round(float(np.mean(enc)), 2) if enc else None
        out["encode_ms_last"] = round(enc[-1], 2) if enc else None
        out["pipeline_fps"] = round(self.pipeline_fps(), 2)
        return out

    async def _pump(self) -> None:
        """Encode the latest result when a browser wants a frame, and send each browser the newest one."""
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        last_encode = -1e9
        while True:
            await self._wake.wait()
            self._wake.clear()
            wait_s = last_encode + 1.0 / self.max_fps - time.perf_counter()
            if wait_s > 0:  # rate cap: newer results arriving meanwhile replace the pending one (dropped)
                await asyncio.sleep(wait_s)
            waiting = [c for c in self._clients if c.wants and not c.sending]
            if not waiting:
                continue
            with self._lock:
                result, self._pending = self._pending, None
            if result is not None:
                last_encode = time.perf_counter()
                seq = self.encoded + 1
                try:
                    packet = await loop.run_in_executor(self._executor, self._encode, result, seq)
                except Exception as err:  # noqa: BLE001 - one bad result must not stop the viewer
                    self.encode_errors += 1
                    log.warning("viewer: could not draw a frame: %s", err)
                    packet = None
                if packet is not None:
                    with self._lock:
                        self.encoded = seq
                    self._packet = packet
            packet = self._packet
            if packet is None:
                continue
            for client in list(self._clients):
                if client.wants and not client.sending and client.last_seq != packet.seq:
                    client.wants = False
                    client.sending = True
                    loop.create_task(self._send(client, packet))

    async def _send(self, client: _Client, packet: Packet) -> None:
        try:
            await client.ws.send_bytes(packet.data)
            client.last_seq = packet.seq
            with self._lock:
                self.sent += 1
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            self._clients.discard(client)
        finally:
            client.sending = False

    def _encode(self, result: Any, seq: int) -> Packet:
        """One frame message (`perception.viewer.frames`); runs in the encoder thread."""
        packet = encode_frame(result, seq, self.options, pipeline_fps=round(self.pipeline_fps(), 2),
                              counters=self.stats())
        with self._lock:
            self._encode_ms.append(packet.header["encode_ms"])
        return packet

    # ------------------------------------------------------------------------------------------ HTTP
    @web.middleware
    async def _guard(self, request: web.Request, handler):
        if _is_loopback(self.host):
            try:
                host = request.url.host or ""
            except ValueError:  # a malformed Host header
                host = ""
            if not _is_loopback(host):
                raise web.HTTPForbidden(text="this viewer only answers to loopback host names\n")
        response = await handler(request)
        if not isinstance(response, web.WebSocketResponse):
            response.headers.update(SECURITY_HEADERS)
        return response

    async def _index(self, request: web.Request) -> web.Response:
        body, kind = self._static["index.html"]
        return web.Response(body=body, content_type=kind, charset="utf-8")

    async def _static_file(self, request: web.Request) -> web.Response:
        entry = self._static.get(request.match_info["name"])
        if entry is None:
            raise web.HTTPNotFound()
        body, kind = entry
        return web.Response(body=body, content_type=kind, charset="utf-8" if kind.startswith("text/") else None)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    def _hello(self) -> dict:
        return {
            "type": "hello", "title": self.title, "layers": list(self.layers),
            "titles": {k: O.LAYER_TITLES[k] for k in self.layers},
            "default_on": [k for k in self.layers if k in O.DEFAULT_LAYERS],
            "opacity": {k: O.DEFAULT_OPACITY[k] for k in self.layers}, "legend": O.legend(),
        }

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            raise web.HTTPForbidden(text="cross-origin WebSocket refused\n")
        if len(self._clients) >= self.max_clients:
            raise web.HTTPServiceUnavailable(text=f"at most {self.max_clients} viewers at a time\n")
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=1024)
        await ws.prepare(request)
        client = _Client(ws)
        self._clients.add(client)
        try:
            await ws.send_str(json.dumps(self._hello()))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and msg.data == "next":
                    client.wants = True
                    if self._wake is not None:
                        self._wake.set()
                elif msg.type in (WSMsgType.ERROR, WSMsgType.BINARY):
                    break
        finally:
            self._clients.discard(client)
        return ws
