"""The viewer's costs, as quoted in docs/viewer.md: what `publish()` costs the pipeline thread, what encoding a
frame costs the viewer's thread, and the pipeline's frame time with and without a viewer and a browser.

    python -m perception.viewer.bench --frames 20          # JSON on stdout, progress on stderr

The "browser" is a WebSocket client in a thread that asks for the next frame as soon as it has one (the
fastest a page can consume); a real page also decodes and draws, in its own process.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time

import numpy as np


def _results(frames: int, size: str):
    from perception.pipeline.core import Pipeline
    from perception.sources.synthetic import SyntheticSource

    pipeline = Pipeline()
    with SyntheticSource(seed=0, frames=frames, size=size) as source:
        out = [pipeline.process(f) for f in source]
    pipeline.close()
    return out


class _Browser:
    """A WebSocket client in its own thread that consumes frames as fast as they come, until `stop()`."""

    def __init__(self, url: str) -> None:
        self.url, self.frames, self._stop = url, 0, threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session, session.ws_connect(self.url + "ws", max_msg_size=0) as ws:
            await ws.receive(timeout=10)  # hello
            while not self._stop.is_set():
                await ws.send_str("next")
                try:
                    await ws.receive(timeout=0.5)
                    self.frames += 1
                except asyncio.TimeoutError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _pipeline_ms(frames: int, size: str, on_result) -> float:
    from perception.pipeline.core import Pipeline
    from perception.sources.synthetic import SyntheticSource

    pipeline = Pipeline()
    times = []
    with SyntheticSource(seed=0, frames=frames, size=size) as source:
        for frame in source:
            t0 = time.perf_counter()
            result = pipeline.process(frame)
            if on_result is not None:
                on_result(result)
            times.append((time.perf_counter() - t0) * 1e3)
    pipeline.close()
    return float(np.median(times[2:] if len(times) > 4 else times))


def run(frames: int = 20, size: str = "640x480", publishes: int = 100_000, rounds: int = 2) -> dict:
    from perception.viewer.frames import encode_frame
    from perception.viewer.overlay import compose
    from perception.viewer.server import Viewer

    print(f"viewer bench: pipeline on {frames} synthetic frames at {size}", file=sys.stderr)
    results = _results(frames, size)
    out: dict = {"size": size, "frames": frames}
    # encode: what the viewer's thread spends per frame shown (all layers with content + map)
    enc = [encode_frame(r, i).header for i, r in enumerate(results)]
    out["encode_ms_median"] = round(float(np.median([h["encode_ms"] for h in enc])), 2)
    sizes = [sum(p["length"] for p in h["parts"]) for h in enc]
    out["frame_message_kB_median"] = round(float(np.median(sizes)) / 1e3, 1)
    t = []
    for r in results:
        t0 = time.perf_counter()
        compose(r)
        t.append((time.perf_counter() - t0) * 1e3)
    out["compose_ms_median"] = round(float(np.median(t)), 2)  # the `overlay` topic picture
    # publish: the pipeline thread's cost, with a browser consuming
    with Viewer(port=0) as viewer:
        browser = _Browser(viewer.url)
        times = np.empty(publishes)
        for i in range(publishes):
            r = results[i % len(results)]
            t0 = time.perf_counter()
            viewer.publish(r)
            times[i] = time.perf_counter() - t0
        browser.stop()
        stats = viewer.stats()
    out["publish_us"] = {"median": round(float(np.median(times)) * 1e6, 2),
                         "p99": round(float(np.percentile(times, 99)) * 1e6, 2),
                         "max": round(float(times.max()) * 1e6, 1), "n": publishes}
    out["publish_counters"] = {k: stats[k] for k in ("published", "encoded", "sent", "dropped")}
    # the pipeline with and without a viewer + browser, alternated (a shared machine drifts)
    without, with_viewer = [], []
    for k in range(rounds):
        print(f"viewer bench: round {k + 1}/{rounds}", file=sys.stderr)
        without.append(_pipeline_ms(frames, size, None))
        with Viewer(port=0) as viewer:
            browser = _Browser(viewer.url)
            with_viewer.append(_pipeline_ms(frames, size, viewer.publish))
            browser.stop()
            shown = viewer.stats()
    out["pipeline_ms_per_frame"] = {"without_viewer": round(float(np.median(without)), 1),
                                    "with_viewer_and_browser": round(float(np.median(with_viewer)), 1)}
    out["last_round_counters"] = {k: shown[k] for k in ("published", "encoded", "sent", "dropped", "encode_ms_mean")}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The viewer's costs (docs/viewer.md), as one JSON line on stdout")
    parser.add_argument("--frames", type=int, default=20, help="synthetic frames per run (default 20)")
    parser.add_argument("--size", default="640x480", help="image size WxH (default 640x480)")
    parser.add_argument("--publishes", type=int, default=100_000, help="publish() calls timed (default 100000)")
    parser.add_argument("--rounds", type=int, default=2, help="with / without viewer rounds, alternated (default 2)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.frames, args.size, args.publishes, args.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
