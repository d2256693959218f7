// perception live overlay viewer: plain JS, no build step.
// Receives frames over a WebSocket (see perception/viewer/server.py for the wire format), draws the camera
// image and blends the enabled layers at their opacity on a canvas, draws the cost map, lists the timings.
// After drawing a frame the page asks for the next one ("next"), so a slow browser simply gets fewer frames.
"use strict";

(function () {
  const state = {
    connected: false,
    frames: 0,       // frames received and drawn
    draws: 0,        // camera canvas redraws (frames, toggles, slider moves)
    seq: -1,         // server sequence number of the frame shown
    layersAvailable: [],
    enabled: {},
    opacity: {},
    lastHeader: null,
  };
  window.viewerState = state;  // read by the browser test

  const $ = (id) => document.getElementById(id);
  const camera = $("camera");
  const cctx = camera.getContext("2d");
  const mapCanvas = $("map");
  const mctx = mapCanvas.getContext("2d");
  let base = null;            // ImageBitmap of the camera image
  let layerBitmaps = {};      // name -> ImageBitmap
  let layerOrder = [];
  const shownTimes = [];
  let ws = null;
  let retryMs = 500;

  function setStatus(online, text) {
    const el = $("status");
    el.textContent = text;
    el.className = "status " + (online ? "online" : "offline");
  }

  function buildControls(hello) {
    $("title").textContent = hello.title || "perception";
    layerOrder = hello.layers;
    const box = $("layers");
    box.textContent = "";
    for (const name of hello.layers) {
      if (!(name in state.enabled)) state.enabled[name] = hello.default_on.includes(name);
      if (!(name in state.opacity)) state.opacity[name] = hello.opacity[name];
      const row = document.createElement("div");
      row.className = "layer absent";
      row.id = "row-" + name;
      const cb = document.createElement("input");
      cb.type = "checkbox";
      cb.id = "layer-" + name;
      cb.checked = state.enabled[name];
      cb.addEventListener("change", () => { state.enabled[name] = cb.checked; drawCamera(); });
      const label = document.createElement("label");
      label.htmlFor = cb.id;
      label.textContent = hello.titles[name] || name;
      const slider = document.createElement("input");
      slider.type = "range";
      slider.min = "0"; slider.max = "100";
      slider.id = "opacity-" + name;
      slider.value = String(Math.round(state.opacity[name] * 100));
      const pct = document.createElement("span");
      pct.className = "muted";
      pct.textContent = slider.value + "%";
      slider.addEventListener("input", () => {
        state.opacity[name] = Number(slider.value) / 100;
        pct.textContent = slider.value + "%";
        drawCamera();
      });
      row.append(cb, label, slider, pct);
      box.append(row);
    }
    const legend = $("legend");
    legend.textContent = "";
    for (const item of hello.legend || []) {
      const span = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = item.color;
      span.append(swatch, document.createTextNode(item.name.replace("_", "-")));
      legend.append(span);
    }
  }

  function drawCamera() {
    if (!base) return;
    if (camera.width !== base.width || camera.height !== base.height) {
      camera.width = base.width;
      camera.height = base.height;
    }
    cctx.globalAlpha = 1;
    cctx.drawImage(base, 0, 0);
    for (const name of layerOrder) {
      const bmp = layerBitmaps[name];
      if (bmp && state.enabled[name] && state.opacity[name] > 0) {
        cctx.globalAlpha = state.opacity[name];
        cctx.drawImage(bmp, 0, 0, camera.width, camera.height);
      }
    }
    cctx.globalAlpha = 1;
    state.draws += 1;
  }

  function showTimings(head) {
    const body = $("timings").tBodies[0];
    body.textContent = "";
    const entries = Object.entries(head.timings_ms || {});
    const max = Math.max(1, ...entries.map((e) => e[1]));
    for (const [stage, ms] of entries) {
      const tr = body.insertRow();
      tr.insertCell().textContent = stage;
      const cell = tr.insertCell();
      cell.className = "ms";
      cell.textContent = ms.toFixed(1) + " ms";
      const bar = tr.insertCell();
      bar.className = "bar";
      const div = document.createElement("div");
      div.style.width = (100 * ms / max).toFixed(1) + "%";
      bar.append(div);
    }
    $("total-ms").textContent = entries.length ? "(" + head.total_ms.toFixed(1) + " ms, encode " +
      head.encode_ms.toFixed(1) + " ms)" : "";
    const c = head.counters || {};
    $("counters").textContent = `${c.published} / ${c.encoded} / ${c.sent} / ${c.dropped}`;
    $("pipeline-fps").textContent = head.pipeline_fps ? head.pipeline_fps.toFixed(1) : "-";
    const err = $("error");
    err.hidden = !head.error;
    err.textContent = head.error ? "frame skipped: " + head.error : "";
    showObjects(head);
    const stamp = (head.stamp_ns / 1e9).toFixed(3);
    $("frame-info").textContent = `${head.width}x${head.height}  frame_id ${head.frame_id}  stamp ${stamp} s`;
  }

  // Collision warnings (most urgent first, as the pipeline orders them) and the detected objects.
  function showObjects(head) {
    const box = $("warnings");
    box.textContent = "";
    for (const w of head.warnings || []) {
      const div = document.createElement("div");
      div.className = w.level;
      div.textContent = w.message;
      box.append(div);
    }
    const objects = head.objects || [];
    const body = $("objects").tBodies[0];
    body.textContent = "";
    for (const o of objects) {
      const tr = body.insertRow();
      tr.insertCell().textContent = o.class + (o.track_id ? " #" + o.track_id : "");
      tr.insertCell().textContent = o.score.toFixed(2);
      const r = tr.insertCell();
      r.className = "ms";
      r.textContent = o.range_m === null ? "no range" : o.range_m.toFixed(1) + " m";
    }
    $("object-count").textContent = "(" + objects.length + ")";
  }

  // A one-channel PNG of codes -> an RGBA bitmap through a 256-entry palette (flat [r, g, b, a, ...]).
  let scratch = null;
  async function colourCodes(blob, palette) {
    const grey = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
    const w = grey.width, h = grey.height;
    if (!scratch || scratch.width !== w || scratch.height !== h) scratch = new OffscreenCanvas(w, h);
    const ctx = scratch.getContext("2d", { willReadFrequently: true });
    ctx.clearRect(0, 0, w, h);
    ctx.drawImage(grey, 0, 0);
    grey.close();
    const image = ctx.getImageData(0, 0, w, h);
    const px = new Uint32Array(image.data.buffer);
    const lut = new Uint32Array(new Uint8Array(palette).buffer);
    const src = image.data;
    for (let i = 0, n = px.length; i < n; i += 1) px[i] = lut[src[i * 4]];
    return createImageBitmap(image);
  }

  async function onFrame(buffer) {
    const view = new DataView(buffer);
    const n = view.getUint32(0, false);
    const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, n)));
    const start = 4 + n;
    const decoded = {};
    await Promise.all(head.parts.map(async (part) => {
      const blob = new Blob([new Uint8Array(buffer, start + part.offset, part.length)], { type: part.type });
      if (part.name.startsWith("codes:")) {
        const name = part.name.slice(6);
        decoded["layer:" + name] = await colourCodes(blob, head.palettes[name]);
      } else {
        decoded[part.name] = await createImageBitmap(blob);
      }
    }));
    for (const bmp of [base, ...Object.values(layerBitmaps)]) if (bmp) bmp.close();
    base = decoded.image;
    layerBitmaps = {};
    for (const [name, bmp] of Object.entries(decoded)) {
      if (name.startsWith("layer:")) layerBitmaps[name.slice(6)] = bmp;
    }
    state.layersAvailable = head.layers;
    for (const name of layerOrder) {
      const row = $("row-" + name);
      if (row) row.className = "layer" + (head.layers.includes(name) ? "" : " absent");
    }
    drawCamera();
    if (decoded.map) {
      mctx.drawImage(decoded.map, 0, 0, mapCanvas.width, mapCanvas.height);
      decoded.map.close();
    }
    showTimings(head);
    state.seq = head.seq;
    state.frames += 1;
    state.lastHeader = head;
    $("seq").textContent = String(head.seq);
    $("frame-count").textContent = String(state.frames);
    const now = performance.now();
    shownTimes.push(now);
    while (shownTimes.length > 30) shownTimes.shift();
    if (shownTimes.length > 1) {
      const fps = (shownTimes.length - 1) * 1000 / (now - shownTimes[0]);
      $("view-fps").textContent = fps.toFixed(1);
    }
  }

  function connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      state.connected = true;
      retryMs = 500;
      setStatus(true, "live");
      ws.send("next");
    };
    ws.onmessage = async (event) => {
      if (typeof event.data === "string") {
        const msg = JSON.parse(event.data);
        if (msg.type === "hello") buildControls(msg);
        return;
      }
      try {
        await onFrame(event.data);
      } catch (err) {
        console.error("viewer: bad frame", err);
      }
      if (ws.readyState === WebSocket.OPEN) ws.send("next");
    };
    ws.onclose = () => {
      state.connected = false;
      setStatus(false, "disconnected, retrying");
      setTimeout(connect, retryMs);   // reconnect with back-off (the pipeline may restart)
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  connect();
})();
