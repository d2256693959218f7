"""The pictures of the overlay viewer and of the `overlay` image topic, as plain functions of a `FrameResult`.

Each layer function takes a `FrameResult` and returns a `Layer` (BGR colours + an alpha mask, both at the input
image's resolution) or None when the result has nothing for that layer (the field is None, the frame was
skipped, or the stage is not built). `compose` blends the enabled layers over the rectified left image;
`map_image` draws the top-down cost map around the robot.

    from perception.viewer.overlay import compose, map_image
    bgr = compose(result)                                     # every default layer, default opacities
    bgr = compose(result, layers=("labels",), opacity=0.7)    # one layer
    top = map_image(result.fused_map, robot=robot_xy_yaw(result.frame.pose))

Layers (names used by the viewer page, `compose` and docs/viewer.md):

- ``labels``     near-range stereo labels (`near.labels.image`, codes 0..5; 0 unknown is transparent)
- ``terrain``    long-range terrain classes (`terrain.classes`, same codes and colours as the stereo labels)
- ``scene``      per-pixel scene classes (`scene.class_mask` + `scene.colors` N x 3 RGB, as in the model metadata;
                 class 0 drawn too)
- ``detections`` boxes with class, score and stereo range; red and thick when the object has a warning
- ``disparity``  stereo disparity in the turbo colour map (NaN / invalid transparent); off by default

Nothing here keeps state or imports the server, so the ROS nodes and the bag writer use it directly.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from perception.errors import InputError
from perception.mapping.render import cost_colours
from perception.stereo.windows import LABEL_COLORS, LABEL_NAMES

LAYERS = ("labels", "terrain", "scene", "detections", "disparity")
DEFAULT_LAYERS = ("labels", "terrain", "scene", "detections")
DEFAULT_OPACITY = {"labels": 0.5, "terrain": 0.4, "scene": 0.45, "detections": 1.0, "disparity": 0.6}
LAYER_TITLES = {
    "labels": "stereo labels (near range)",
    "terrain": "terrain classes (long range)",
    "scene": "scene classes",
    "detections": "detections, range, warnings",
    "disparity": "disparity",
}

_LABEL_LUT = np.array(LABEL_COLORS, np.uint8)  # code -> BGR; codes 0..5
DETECTION_BGR = (80, 255, 80)
WARNING_BGR = (0, 0, 255)
ROBOT_BGR = (255, 255, 255)
RING_BGR = (140, 140, 140)


class Layer:
    """One overlay layer at the input resolution: `bgr` HxWx3 uint8 and `alpha` HxW uint8 (0 = transparent).

    An indexed layer (class codes, disparity) is kept as `codes` (HxW uint8) and its `palette` (256 x 4 BGRA);
    `bgr` / `alpha` are made from them on first use. The viewer sends the codes (a one-channel PNG) and the
    palette and the page colours them, several times cheaper to encode than a colour PNG with alpha."""

    def __init__(self, bgr: np.ndarray | None = None, alpha: np.ndarray | None = None, *,
                 codes: np.ndarray | None = None, palette: np.ndarray | None = None) -> None:
        if (bgr is None or alpha is None) and (codes is None or palette is None):
            raise InputError("a layer needs bgr + alpha, or codes + palette", subject="overlay")
        self._bgr, self._alpha, self.codes, self.palette = bgr, alpha, codes, palette

    @classmethod
    def indexed(cls, codes: np.ndarray, palette: np.ndarray) -> "Layer":
        """A layer from uint8 codes and a 256 x 4 BGRA palette."""
        return cls(codes=codes, palette=palette)

    def _colour(self) -> None:
        bgra = self.palette[self.codes]
        self._bgr, self._alpha = bgra[..., :3], bgra[..., 3]

    @property
    def bgr(self) -> np.ndarray:
        if self._bgr is None:
            self._colour()
        return self._bgr

    @property
    def alpha(self) -> np.ndarray:
        if self._alpha is None:
            self._colour()
        return self._alpha

    def bgra(self) -> np.ndarray:
        """HxWx4 uint8 with the alpha as the fourth channel."""
        return np.dstack([self.bgr, self.alpha])


def palette_of(colours: np.ndarray, transparent: int | None = 0) -> np.ndarray:
    """256 x 4 BGRA palette: N x 3 BGR `colours` opaque, the code `transparent` and codes >= N transparent."""
    colours = np.asarray(colours, np.uint8).reshape(-1, 3)[:256]
    palette = np.zeros((256, 4), np.uint8)
    palette[:len(colours), :3] = colours
    palette[:len(colours), 3] = 255
    if transparent is not None:
        palette[transparent] = 0
    return palette


def base_image(result) -> np.ndarray:
    """The rectified left image as BGR uint8 (mono is expanded to three channels)."""
    frame = getattr(result, "frame", None)
    image = getattr(frame, "left", None)
    if image is None:
        raise InputError("has no left image to draw on", subject="overlay")
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise InputError(f"left image dtype is {image.dtype}, expected uint8", subject="overlay")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2BGR)
    raise InputError(f"left image shape {image.shape} is neither HxW nor HxWx3", subject="overlay")


def _image_size(result) -> tuple[int, int]:
    left = getattr(getattr(result, "frame", None), "left", None)
    if left is None:
        raise InputError("has no left image", subject="overlay")
    return int(left.shape[0]), int(left.shape[1])


def _fit(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A per-pixel code image at the input resolution (nearest neighbour when a stage worked at another size)."""
    if array.shape[:2] == shape:
        return array
    return cv2.resize(array, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


def code_layer(codes: np.ndarray | None, colours: np.ndarray, shape: tuple[int, int], *,
               transparent: int | None = 0) -> Layer | None:
    """Per-pixel class codes -> a layer coloured by the table `colours` (N x 3 BGR); codes outside the table and
    the code `transparent` are transparent."""
    if codes is None:
        return None
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise InputError(f"class image shape {codes.shape}, expected HxW", subject="overlay")
    if codes.dtype != np.uint8:  # codes outside 0..255 cannot be coloured: transparent (255 unless in the table)
        codes = np.where((codes >= 0) & (codes < 256), codes, 255).astype(np.uint8)
    palette = palette_of(colours, transparent)
    return Layer.indexed(np.ascontiguousarray(_fit(codes, shape)), palette)


def labels_layer(result) -> Layer | None:
    """The near-range stereo labels (`result.near.labels.image`); unknown (0) is transparent."""
    labels = getattr(getattr(result, "near", None), "labels", None)
    return code_layer(getattr(labels, "image", None), _LABEL_LUT, _image_size(result))


def terrain_layer(result) -> Layer | None:
    """The long-range terrain classes (`result.terrain.classes`, codes as the stereo labels); unknown transparent."""
    return code_layer(getattr(getattr(result, "terrain", None), "classes", None), _LABEL_LUT, _image_size(result))


def scene_layer(result) -> Layer | None:
    """The scene classes (`result.scene.class_mask`, coloured by `result.scene.colors` N x 3 RGB, the model
    metadata's order, or by the scene's `color_mask` (BGR) when it has no colour table)."""
    scene = getattr(result, "scene", None)
    if scene is None:
        return None
    shape = _image_size(result)
    mask = getattr(scene, "class_mask", None)
    colours = getattr(scene, "colors", None)
    if mask is not None and colours is not None:
        return code_layer(mask, np.asarray(colours)[:, ::-1], shape, transparent=None)
    colour_mask = getattr(scene, "color_mask", None)
    if colour_mask is not None:
        colour_mask = np.asarray(colour_mask, np.uint8)
        bgr = cv2.resize(colour_mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) \
            if colour_mask.shape[:2] != shape else colour_mask
        return Layer(np.ascontiguousarray(bgr), np.full(shape, 255, np.uint8))
    if mask is not None:  # no colours at all: a fixed pseudo-random palette
        rng = np.random.default_rng(7)
        return code_layer(mask, rng.integers(40, 255, (256, 3)), shape, transparent=None)
    return None


def _get(obj: Any, *names: str, default=None):
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if value is not None:
            return value
    return default


def _box(det: Any) -> tuple[float, float, float, float] | None:
    """(x1, y1, x2, y2) of a detection: `corners`, `box` / `bbox` (x1, y1, x2, y2) or cx, cy, width, height."""
    corners = _get(det, "corners", "box", "bbox", "xyxy")
    if corners is not None:
        x1, y1, x2, y2 = (float(v) for v in corners)
        return x1, y1, x2, y2
    cx, cy, w, h = (_get(det, k) for k in ("cx", "cy", "width", "height"))
    if None in (cx, cy, w, h):
        return None
    return float(cx) - float(w) / 2, float(cy) - float(h) / 2, float(cx) + float(w) / 2, float(cy) + float(h) / 2


def _range_m(det: Any) -> float | None:
    value = _get(det, "range_m", "distance_m")
    if value is None:
        pos = _get(det, "position")
        if pos is not None:
            value = float(np.linalg.norm(np.asarray(pos, np.float64)))
    try:
        value = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return value if value is not None and math.isfinite(value) else None


def detections_and_warnings(result) -> tuple[list, list]:
    """The detections of `result` (a list, or an object with `.detections`) and its warnings (`.warnings` of the
    detections object or of the result)."""
    dets = getattr(result, "detections", None)
    if dets is None:
        return [], []
    warnings = getattr(dets, "warnings", None)
    if warnings is None:
        warnings = getattr(result, "warnings", None)
    if not isinstance(dets, (list, tuple)) and hasattr(dets, "detections"):
        dets = dets.detections
    return list(dets or []), list(warnings or [])


def _warned(det: Any, index: int, warnings: Sequence) -> bool:
    if _get(det, "warning", "warn"):
        return True
    track = _get(det, "track_id")
    for w in warnings:
        ref = _get(w, "detection", "object")
        if ref is det:
            return True
        if track not in (None, "") and str(_get(w, "track_id", default="")) == str(track):
            return True
        w_index = _get(w, "index", "detection_index")
        if w_index is not None and int(w_index) == index:
            return True
    return False


def detections_layer(result) -> Layer | None:
    """Boxes with "class score range": green, or red and thick for an object with a collision warning."""
    if getattr(result, "detections", None) is None:
        return None
    dets, warnings = detections_and_warnings(result)
    h, w = _image_size(result)
    bgr = np.zeros((h, w, 3), np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.4, h / 960)
    for i, det in enumerate(dets):
        box = _box(det)
        if box is None or not all(math.isfinite(v) for v in box):
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        warn = _warned(det, i, warnings)
        colour = WARNING_BGR if warn else DETECTION_BGR
        thick = 3 if warn else 2
        name = str(_get(det, "class_name", "class_id", "label", "name", default="object"))
        score = _get(det, "score", "confidence")
        rng = _range_m(det)
        text = name + (f" {float(score):.2f}" if score is not None else "")
        text += f" {rng:.1f} m" if rng is not None else ""
        if warn:
            text = "! " + text
        for img, c in ((bgr, colour), (alpha, 255)):
            cv2.rectangle(img, (x1, y1), (x2, y2), c, thick)
        (tw, th), base = cv2.getTextSize(text, font, scale, 1)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else y2 + th + 4
        for img, c in ((bgr, colour), (alpha, 255)):
            cv2.rectangle(img, (x1, ty - th - 2), (x1 + tw + 4, ty + base), c, -1)
        cv2.putText(bgr, text, (x1 + 2, ty), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return Layer(bgr, alpha)


def disparity_layer(result, max_disparity: float | None = None) -> Layer | None:
    """Disparity in the turbo colour map (near = red), scaled to `max_disparity` (None: the frame's 99th
    percentile); invalid (NaN) pixels transparent."""
    disp = getattr(getattr(result, "disparity", None), "disparity", None)
    if disp is None:
        return None
    shape = _image_size(result)
    disp = np.asarray(disp, np.float32)
    if disp.shape != shape:
        disp = cv2.resize(disp, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    valid = np.isfinite(disp) & (disp > 0)
    if max_disparity is None:
        max_disparity = float(np.percentile(disp[valid], 99)) if valid.any() else 1.0
    scaled = np.clip(np.nan_to_num(disp, nan=0.0) * (254.0 / max(max_disparity, 1e-6)), 0, 254)
    codes = np.where(valid, scaled.astype(np.uint8) + 1, 0).astype(np.uint8)  # 0: invalid, 1..255: near = high
    return Layer.indexed(codes, _turbo_palette())


def _turbo_palette() -> np.ndarray:
    turbo = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(1, -1), cv2.COLORMAP_TURBO)[0]
    return palette_of(turbo, transparent=0)


LAYER_FUNCTIONS = {
    "labels": labels_layer,
    "terrain": terrain_layer,
    "scene": scene_layer,
    "detections": detections_layer,
    "disparity": disparity_layer,
}


def layers_of(result, layers: Iterable[str] = LAYERS) -> dict[str, Layer]:
    """The named layers that `result` has content for (absent ones are left out)."""
    out = {}
    for name in _check_layers(layers):
        layer = LAYER_FUNCTIONS[name](result)
        if layer is not None:
            out[name] = layer
    return out


def _check_layers(layers: Iterable[str]) -> tuple[str, ...]:
    if isinstance(layers, str):
        layers = (layers,)
    layers = tuple(layers)
    unknown = [name for name in layers if name not in LAYER_FUNCTIONS]
    if unknown:
        raise InputError(f"unknown layer(s) {', '.join(unknown)}", subject="overlay",
                         hint=f"choose from {', '.join(LAYERS)}")
    return layers


def blend(image: np.ndarray, layer: Layer, opacity: float) -> np.ndarray:
    """`image` (BGR uint8) with `layer` drawn over it at `opacity` (0..1) times the layer's alpha, in place."""
    if not 0.0 <= opacity <= 1.0:
        raise InputError(f"opacity {opacity} is outside 0..1", subject="overlay")
    if opacity == 0.0:
        return image
    w2 = layer.alpha.astype(np.float32) * np.float32(opacity / 255.0)
    image[:] = cv2.blendLinear(image, np.ascontiguousarray(layer.bgr), 1.0 - w2, w2)
    return image


def compose(result, layers: Iterable[str] = DEFAULT_LAYERS,
            opacity: float | Mapping[str, float] | None = None) -> np.ndarray:
    """The rectified left image with `layers` drawn over it in the order of `LAYERS`: BGR uint8 at the input
    resolution. `opacity`: one value for every layer, a mapping per layer, or None for `DEFAULT_OPACITY`. A
    result without a layer's content (None field, skipped frame) just shows the image."""
    wanted = set(_check_layers(layers))
    image = base_image(result).copy()
    for name in LAYERS:
        if name not in wanted:
            continue
        if opacity is None:
            alpha = DEFAULT_OPACITY[name]
        elif isinstance(opacity, Mapping):
            alpha = float(opacity.get(name, DEFAULT_OPACITY[name]))
        else:
            alpha = float(opacity)
        layer = LAYER_FUNCTIONS[name](result)
        if layer is not None:
            blend(image, layer, alpha)
    return image


# ---------------------------------------------------------------------------------------- the top-down map
def robot_xy_yaw(pose) -> tuple[float, float, float] | None:
    """(x, y, yaw) of a `perception.frame.Pose` in its frame, or None."""
    if pose is None:
        return None
    x, y = float(pose.position[0]), float(pose.position[1])
    qx, qy, qz, qw = (float(v) for v in pose.orientation)
    yaw = math.atan2(2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz))
    return x, y, yaw


def map_image(grid, robot: tuple[float, float, float] | None = None, *, pixels: int = 400,
              ring_m: float = 25.0, label: str | None = None) -> np.ndarray:
    """A `pixels` x `pixels` BGR top-down picture of an OccupancyGrid-like `grid` (`data` HxW int8 0..100 / -1,
    row = y, `resolution`, `origin_xy_yaw`), seen from above with x right and y up, range rings every `ring_m`
    metres around the robot and the robot as a white triangle along its heading. `robot` = (x, y, yaw) in the
    grid's frame; None puts it at the grid centre, heading +x. `grid` None gives a dark "no map" picture."""
    if pixels < 16:
        raise InputError(f"pixels {pixels} is too small (at least 16)", subject="map_image")
    if grid is None:
        image = np.full((pixels, pixels, 3), 30, np.uint8)
        cv2.putText(image, "no map yet", (10, pixels // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (200, 200, 200), 1,
                    cv2.LINE_AA)
        return image
    data = np.asarray(grid.data)
    if data.ndim != 2 or data.size == 0:
        raise InputError(f"grid data shape {data.shape}, expected HxW", subject="map_image")
    rows, cols = data.shape
    res = float(grid.resolution)
    ox, oy, oyaw = (float(v) for v in grid.origin_xy_yaw)
    colours = cost_colours(data)[::-1]  # row 0 = lowest y -> bottom of the picture
    side = max(rows, cols)
    scale = pixels / side  # px per cell
    image = np.full((pixels, pixels, 3), 30, np.uint8)
    w, h = max(1, int(round(cols * scale))), max(1, int(round(rows * scale)))
    scaled = cv2.resize(np.ascontiguousarray(colours), (w, h), interpolation=cv2.INTER_NEAREST)
    image[pixels - h:, :w] = scaled[:pixels, :pixels]
    if robot is None:
        robot = (ox + cols * res / 2, oy + rows * res / 2, 0.0)
    rx, ry, yaw = robot
    # origin yaw: OccupancyGrid cells are in the origin's frame; rotate the robot into it
    dx, dy = rx - ox, ry - oy
    c, s = math.cos(-oyaw), math.sin(-oyaw)
    gx, gy, gyaw = c * dx - s * dy, s * dx + c * dy, yaw - oyaw
    px_per_m = scale / res
    centre = (int(round(gx * px_per_m)), int(round(pixels - gy * px_per_m)))
    if ring_m > 0:
        for k in range(1, int(side * res / 2 / ring_m) + 1):
            radius = int(round(k * ring_m * px_per_m))
            cv2.circle(image, centre, radius, RING_BGR, 1, cv2.LINE_AA)
            cv2.putText(image, f"{int(k * ring_m)} m", (centre[0] + 3, centre[1] - radius + 12),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.32, RING_BGR, 1, cv2.LINE_AA)
    size = max(6.0, 0.03 * pixels)
    pts = [(centre[0] + size * math.cos(gyaw), centre[1] - size * math.sin(gyaw)),
           (centre[0] + 0.6 * size * math.cos(gyaw + 2.4), centre[1] - 0.6 * size * math.sin(gyaw + 2.4)),
           (centre[0] + 0.6 * size * math.cos(gyaw - 2.4), centre[1] - 0.6 * size * math.sin(gyaw - 2.4))]
    cv2.fillPoly(image, [np.round(np.array(pts)).astype(np.int32)], ROBOT_BGR, cv2.LINE_AA)
    if label:
        cv2.putText(image, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def result_map_image(result, *, pixels: int = 400) -> np.ndarray:
    """`map_image` of the result's fused map (else its terrain map) with the robot at the frame's pose."""
    grid = getattr(result, "fused_map", None)
    if grid is None:
        grid = getattr(result, "terrain_map", None)
    pose = getattr(getattr(result, "frame", None), "pose", None)
    return map_image(grid, robot_xy_yaw(pose), pixels=pixels)


def legend() -> list[dict]:
    """Names and colours (CSS hex) of the label / terrain class codes, for the page's legend."""
    return [{"code": i, "name": n, "color": "#%02x%02x%02x" % tuple(reversed(LABEL_COLORS[i]))}
            for i, n in enumerate(LABEL_NAMES) if i > 0]
