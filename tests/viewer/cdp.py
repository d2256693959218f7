"""A minimal Chrome DevTools Protocol client for the browser test: headless Debian chromium, driven over its
DevTools WebSocket with aiohttp (no browser download, no extra package)."""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import subprocess
import time
from pathlib import Path

import aiohttp

CHROMIUM = Path("/usr/bin/chromium")


class Chromium:
    """`async with Chromium(profile_dir) as page:` a headless chromium with one page target to drive."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 900, timeout_s: float = 30.0) -> None:
        self.profile = Path(profile)
        self.width, self.height = width, height
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ws = None
        self._ids = itertools.count(1)
        self.console: list[str] = []

    async def __aenter__(self) -> "Chromium":
        args = [str(CHROMIUM), "--headless=new", "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
                "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--disable-background-networking", "--disable-sync", "--mute-audio",
                f"--window-size={self.width},{self.height}", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # chromium refuses to run as root with its sandbox
        self.profile.mkdir(parents=True, exist_ok=True)
        self._log = open(self.profile.parent / "chromium.log", "wb")  # a file: a full pipe would stall chromium
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._log)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout_s
        port = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            if port_file.exists():
                lines = port_file.read_text().splitlines()
                if lines and lines[0].strip().isdigit():
                    port = int(lines[0])
                    break
            await asyncio.sleep(0.05)  # polling for the file, with a deadline
        if port is None:
            err = (self.profile.parent / "chromium.log").read_text(errors="replace")[-2000:]
            await self.close()
            raise RuntimeError(f"chromium did not open its DevTools port within {self.timeout_s} s: {err}")
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json/list") as r:
            targets = await r.json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = await self.session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        await self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                        deviceScaleFactor=1, mobile=False)
        await self.send("Runtime.enable")
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.send("Browser.close"), 5)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
            await self.ws.close()
        if self.session is not None:
            await self.session.close()
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self._log.close()

    async def send(self, method: str, **params):
        msg_id = next(self._ids)
        await self.ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to {method} within {self.timeout_s} s")
            msg = await self.ws.receive(timeout=left)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"DevTools connection ended during {method}: {msg.type}")
            data = json.loads(msg.data)
            if data.get("method") == "Runtime.consoleAPICalled":
                args = data["params"]["args"]
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            if data.get("method") == "Runtime.exceptionThrown":
                self.console.append("exception: " + json.dumps(data["params"]["exceptionDetails"])[:500])
            if data.get("id") == msg_id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data.get("result", {})

    async def evaluate(self, expression: str):
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def screenshot(self) -> bytes:
        result = await self.send("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])

    async def wait_for(self, expression: str, timeout_s: float = 30.0, what: str = ""):
        """Evaluate `expression` until it is truthy (polling with a deadline); return its value."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.05)
        raise TimeoutError(f"timed out after {timeout_s} s waiting for {what or expression}; console: {self.console}")
