"""The viewer's frame message: one `FrameResult` as the bytes the page draws (wire format of the WebSocket).

One binary message per frame: 4 bytes big-endian header length N, N bytes of JSON header, then the parts' bytes.
Header: `seq`, `stamp_ns`, `frame_id`, `width`, `height`, `layers` (those with content), `timings_ms`,
`total_ms`, `encode_ms`, `error` (a skipped frame's reason), `palettes`, `objects` (detections: class, score,
range_m, track_id), `warnings` (collision warnings: kind, level, class, range_m, ttc_s, message), `parts`
(name, MIME type, offset, length) and whatever the server adds (`pipeline_fps`, `counters`). Parts:

- ``image``          the rectified left image, JPEG
- ``codes:<layer>``  an indexed layer (classes, disparity): its codes as a one-channel PNG, coloured in the page
                     by ``palettes[<layer>]`` (256 x RGBA, flat) — several times cheaper to encode than RGBA
- ``layer:<layer>``  a drawn layer (detections): RGBA PNG
- ``map``            the top-down cost map with the robot, PNG
"""
from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from perception.errors import InputError
from perception.viewer import overlay as O


@dataclass
class EncodeOptions:
    """How frames are encoded for the page."""

    layers: tuple[str, ...] = O.LAYERS
    jpeg_quality: int = 80  # camera image, 1..100
    png_compression: int = 1  # layers and map, 0..9 (1: fast; the layers are mostly flat)
    map_pixels: int = 400  # side of the map picture, px


@dataclass
class Packet:
    seq: int
    data: bytes
    header: dict = field(default_factory=dict)


def _encode(ext: str, image: np.ndarray, params: list[int]) -> bytes:
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise InputError(f"{ext} encoding failed for an image of shape {image.shape}", subject="viewer")
    return buf.tobytes()


def _finite(value: Any) -> float | None:
    v = float(value) if value is not None else None
    return round(v, 2) if v is not None and np.isfinite(v) else None


def objects_and_warnings(result: Any) -> tuple[list[dict], list[dict]]:
    """The detections and collision warnings of `result`, as the page lists them."""
    dets, warnings = O.detections_and_warnings(result)
    objects = [{"class": str(d.class_id), "score": round(float(d.score), 2), "range_m": _finite(d.range_m),
                "track_id": str(d.track_id)} for d in dets]
    alerts = [{"kind": w.kind, "level": w.level, "class": w.class_id, "track_id": str(w.track_id),
               "range_m": _finite(w.range_m), "ttc_s": _finite(w.ttc_s), "message": w.message} for w in warnings]
    return objects, alerts


def encode_frame(result: Any, seq: int, options: EncodeOptions = EncodeOptions(), **extra) -> Packet:
    """`result` as one frame message (module docstring); `extra` goes into the header."""
    t0 = time.perf_counter()
    base = O.base_image(result)
    parts = [("image", "image/jpeg", _encode(".jpg", base, [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality]))]
    png = [cv2.IMWRITE_PNG_COMPRESSION, options.png_compression]
    available, palettes = [], {}
    for name, layer in O.layers_of(result, options.layers).items():
        if layer.codes is not None:
            parts.append((f"codes:{name}", "image/png", _encode(".png", layer.codes, png)))
            palettes[name] = layer.palette[:, [2, 1, 0, 3]].ravel().tolist()  # BGRA -> RGBA
        else:
            parts.append((f"layer:{name}", "image/png", _encode(".png", layer.bgra(), png)))
        available.append(name)
    parts.append(("map", "image/png", _encode(".png", O.result_map_image(result, pixels=options.map_pixels), png)))
    encode_ms = (time.perf_counter() - t0) * 1e3
    header = getattr(result, "header", None)
    timings = {k: round(float(v), 2) for k, v in (getattr(result, "timings_ms", None) or {}).items()}
    objects, alerts = objects_and_warnings(result)
    offset, meta = 0, []
    for name, kind, data in parts:
        meta.append({"name": name, "type": kind, "offset": offset, "length": len(data)})
        offset += len(data)
    head = {
        "type": "frame", "seq": seq, "stamp_ns": int(getattr(header, "stamp_ns", 0) or 0),
        "frame_id": str(getattr(header, "frame_id", "") or ""), "width": int(base.shape[1]),
        "height": int(base.shape[0]), "layers": available, "timings_ms": timings,
        "total_ms": round(sum(timings.values()), 2), "encode_ms": round(encode_ms, 2),
        "error": str(getattr(result, "error", "") or ""), "palettes": palettes, "objects": objects,
        "warnings": alerts, **extra, "parts": meta,
    }
    head_bytes = json.dumps(head).encode()
    data = struct.pack(">I", len(head_bytes)) + head_bytes + b"".join(p[2] for p in parts)
    return Packet(seq, data, head)


def parse_frame(data: bytes) -> tuple[dict, dict[str, bytes]]:
    """A frame message -> (header, {part name: bytes}); the reader's side of `encode_frame`."""
    if len(data) < 4:
        raise InputError("frame message shorter than its length prefix", subject="viewer")
    n = struct.unpack(">I", data[:4])[0]
    head = json.loads(data[4:4 + n])
    body = data[4 + n:]
    return head, {p["name"]: body[p["offset"]:p["offset"] + p["length"]] for p in head["parts"]}
