"""The viewer page in real headless Chromium (Debian `chromium`): it loads, the image updates while frames are
published, a layer toggle and an opacity slider change the canvas, and a screenshot is taken.

The screenshot goes to the test's tmp folder; with PERCEPTION_UPDATE_DOCS=1 it also replaces
docs/images/viewer.png (the picture in docs/viewer.md).
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from perception.detect.alerts import CollisionWarning
from perception.frame import Header
from perception.viewer.server import Viewer
from tests.viewer.cdp import CHROMIUM, Chromium

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]

# a checksum of the camera canvas's pixels (position-weighted so a moved pattern differs)
CANVAS_HASH = """(() => { const c = document.getElementById('camera');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0; for (let i = 0; i < d.length; i += 1) { h = (h * 31 + d[i]) | 0; } return h; })()"""
STATE = "JSON.parse(JSON.stringify({frames: viewerState.frames, draws: viewerState.draws, seq: viewerState.seq, " \
        "layers: viewerState.layersAvailable, text: document.getElementById('frame-count').textContent}))"


def stamped(result, i: int):
    return dataclasses.replace(result, header=Header(i, result.header.frame_id))


@pytest.fixture
def chromium_profile(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    return tmp_path / "profile"


def test_page_loads_updates_toggles_and_screenshots(chromium_profile, tmp_path, drive_results):
    viewer = Viewer(port=0, title="perception demo").start()
    viewer.publish(stamped(drive_results[0], 1))

    async def main():
        async with Chromium(chromium_profile, height=1000) as page:
            await page.navigate(viewer.url)
            await page.wait_for("window.viewerState && viewerState.frames >= 1", what="the first frame")
            first = await page.evaluate(STATE)
            assert first["text"] == str(first["frames"])
            assert await page.evaluate("document.getElementById('status').textContent") == "live"
            # the image updates: publish new results (as a pipeline would) until the page has shown 3 more
            deadline = time.monotonic() + 60
            i = 0
            state = first
            while time.monotonic() < deadline and i < 500 and state["frames"] < first["frames"] + 3:
                i += 1
                viewer.publish(stamped(drive_results[i % len(drive_results)], 100 + i))
                await asyncio.sleep(0.02)  # the pipeline's frame interval, not synchronisation
                state = await page.evaluate(STATE)
            assert state["frames"] >= first["frames"] + 3, state
            assert state["seq"] > first["seq"] and int(state["text"]) == state["frames"]
            # settle on the last (most learned) frame of the drive; wait until the page shows it
            last = drive_results[-1]
            viewer.publish(last)
            await page.wait_for(f"viewerState.lastHeader && Math.abs(viewerState.lastHeader.stamp_ns - "
                                f"{last.header.stamp_ns}) < 1e4", what="the last frame")  # JS numbers: ~1e2 ns
            state = await page.evaluate(STATE)
            assert {"labels", "terrain"} <= set(state["layers"])
            assert await page.evaluate("document.getElementById('layer-labels').checked")
            before = await page.evaluate(CANVAS_HASH)
            # toggling the stereo labels off changes what is drawn, without a new frame
            await page.evaluate("document.getElementById('layer-labels').click()")
            await page.wait_for(f"viewerState.draws > {state['draws']}", what="a redraw after the toggle")
            off = await page.evaluate(CANVAS_HASH)
            assert off != before
            assert (await page.evaluate(STATE))["frames"] == state["frames"]
            # and back on draws exactly the same picture again
            await page.evaluate("document.getElementById('layer-labels').click()")
            assert await page.evaluate(CANVAS_HASH) == before
            # the page colours the class codes exactly: with only the labels at 100 %, a labelled pixel is its colour
            ground = np.argwhere(last.near.labels.image == 2)
            r, c = (int(v) for v in ground[len(ground) // 2])
            await page.evaluate("['terrain', 'scene', 'detections'].forEach(n => { const b = "
                                "document.getElementById('layer-' + n); if (b.checked) b.click(); });"
                                "(() => { const s = document.getElementById('opacity-labels'); s.value = '100'; "
                                "s.dispatchEvent(new Event('input')); })()")
            rgba = await page.evaluate(f"Array.from(document.getElementById('camera').getContext('2d')"
                                       f".getImageData({c}, {r}, 1, 1).data)")
            assert rgba == [90, 230, 90, 255]  # ground, LABEL_COLORS[2] in RGB
            await page.evaluate("['terrain', 'scene', 'detections'].forEach(n => document.getElementById('layer-' + n)"
                                ".click());(() => { const s = document.getElementById('opacity-labels'); "
                                "s.value = '50'; s.dispatchEvent(new Event('input')); })()")
            assert await page.evaluate(CANVAS_HASH) == before
            # the terrain opacity slider changes the picture too
            await page.evaluate("(() => { const s = document.getElementById('opacity-terrain'); s.value = '0'; "
                                "s.dispatchEvent(new Event('input')); })()")
            assert await page.evaluate(CANVAS_HASH) != before
            await page.evaluate("(() => { const s = document.getElementById('opacity-terrain'); s.value = '40'; "
                                "s.dispatchEvent(new Event('input')); })()")
            # the map and the timing table are drawn
            rows = await page.evaluate("document.querySelectorAll('#timings tr').length")
            assert rows >= 5
            map_pixels = await page.evaluate("""(() => { const c = document.getElementById('map');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 0; i < d.length; i += 4) { if (d[i + 3] > 0) n++; } return n; })()""")
            assert map_pixels == 400 * 400
            # the detected objects are listed
            objects = await page.evaluate("document.querySelectorAll('#objects tr').length")
            assert objects == len(last.detections.detections) > 0
            png = await page.screenshot()  # (before the made-up warning below)
            # a collision warning shows as a banner
            warning = CollisionWarning("pedestrian_in_path", "warning", 7, "pedestrian", 6.0, 1.2, (6.0, 0.3),
                                       "warning: pedestrian 7 in path at 6.0 m", last.header)
            warned = dataclasses.replace(last, header=Header(last.header.stamp_ns + 1, last.header.frame_id),
                                         detections=dataclasses.replace(last.detections, warnings=[warning]))
            viewer.publish(warned)
            await page.wait_for("document.querySelectorAll('#warnings div.warning').length === 1",
                                what="the warning banner")
            assert await page.evaluate("document.querySelector('#warnings div').textContent") == warning.message
            errors = [m for m in page.console if "exception" in m or "bad frame" in m]
            assert not errors, errors
            return png

    try:
        png = asyncio.run(main())
    finally:
        viewer.stop()
    shot = tmp_path / "viewer.png"
    shot.write_bytes(png)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (1000, 1280)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 1000  # a real picture, not a blank page
    if os.environ.get("PERCEPTION_UPDATE_DOCS") == "1":
        target = REPO / "docs" / "images" / "viewer.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
