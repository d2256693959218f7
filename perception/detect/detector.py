"""The detection stage: a frame in, class-labelled boxes at the INPUT resolution out (stamp and frame_id kept).

    det = Detector()                          # the shipped default (engines/detect_sim_camvid.onnx)
    det = Detector("yolov8n.onnx")            # a user's YOLO / NanoDet export with a YAML beside it
    result = det.detect(bgr, header)          # DetectResult: detections (Detection2D), ms, header

Any input size and aspect ratio: the frame is letterboxed into the network input (or plainly resized when the
model's decoder says `letterbox: false`), the outputs are decoded in network pixels (`perception.detect.decode`)
and mapped back exactly. Per-class score thresholds (`thresholds={"pedestrian": 0.25}`), class-aware NMS.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from perception.detect import decode as D
from perception.errors import InputError, ModelError
from perception.frame import Header
from perception.io.detections import Detection2D

DEFAULT_MODEL = "detect_sim_camvid.onnx"


@dataclass
class DetectResult:
    detections: list[Detection2D]
    ms: float
    header: Header | None = None
    class_names: list[str] = field(default_factory=list)

    @property
    def stamp_ns(self) -> int | None:
        return self.header.stamp_ns if self.header else None

    @property
    def frame_id(self) -> str | None:
        return self.header.frame_id if self.header else None

    def arrays(self):
        """(boxes Nx4 x0 y0 x1 y1, scores N, class names list)."""
        boxes = np.array([d.corners for d in self.detections], np.float32).reshape(-1, 4)
        return boxes, np.array([d.score for d in self.detections], np.float32), [d.class_id for d in self.detections]


def default_model_path() -> Path:
    from perception.engines.catalog import ENGINES_ENV, shipped_models_dir

    folder = shipped_models_dir()
    if folder is None or not (folder / DEFAULT_MODEL).is_file():
        raise ModelError("the default detection model is not installed",
                         subject=str((folder or Path("engines")) / DEFAULT_MODEL),
                         hint=f"pass a model path, or set {ENGINES_ENV} to a folder holding {DEFAULT_MODEL}")
    return folder / DEFAULT_MODEL


class Detector:
    """Boxes for uint8 BGR (or grey) frames of any size (see module doc)."""

    def __init__(self, model: str | Path | None = None, *, backend: str = "auto", threads: int | None = None,
                 thresholds: dict | float | None = None, nms_iou: float | None = None, max_detections: int = 100,
                 providers=None) -> None:
        from perception.engines import open_engine

        self.engine = open_engine(model or default_model_path(), backend=backend, task="detect", threads=threads,
                                  providers=providers)
        meta = self.engine.metadata
        subject = str(self.engine.path)
        self.input = meta.inputs[0]
        if self.input.layout != "NCHW" or len(self.input.shape) != 4 or self.input.shape[1] not in (1, 3) \
                or min(self.input.shape[2:]) <= 0:
            raise ModelError(f"input '{self.input.name}' is {self.input.layout} {self.input.shape}", subject=subject,
                             hint="detectors take one static N=1 x C=3 x H x W image")
        self.decoder = dict(meta.decoder)
        fmt = self.decoder.get("format") or meta.outputs[0].decoding
        if fmt not in D.FORMATS:
            raise ModelError(f"unknown detection output decoding '{fmt}'", subject=subject,
                             hint=f"set decoder.format (or the output's decoding) to one of {', '.join(D.FORMATS)}")
        self.format = fmt
        self.class_names = meta.class_names
        n = int(self.decoder.get("num_classes", len(self.class_names)))
        if n != len(self.class_names):
            raise ModelError(f"{n} classes in the decoder but {len(self.class_names)} names", subject=subject)
        if fmt == "centernet":
            names = {t.decoding: t for t in meta.outputs}
            if "heatmap" not in names or "ltrb" not in names:
                raise ModelError("a centernet model needs outputs decoded as 'heatmap' and 'ltrb'", subject=subject)
            self._heat, self._ltrb = names["heatmap"].name, names["ltrb"].name
            if names["heatmap"].shape[1] != n:
                raise ModelError(f"heatmap has {names['heatmap'].shape[1]} channels for {n} classes", subject=subject)
        self.output = meta.outputs[0]
        self.thresholds = D.class_thresholds(thresholds, self.class_names,
                                             float(self.decoder.get("score_threshold", 0.3)))
        self.nms_iou = float(nms_iou if nms_iou is not None else self.decoder.get("nms_iou", 0.5))
        self.max_detections = int(max_detections)
        self.letterbox = bool(self.decoder.get("letterbox", fmt != "nanodet"))
        self.centered = bool(self.decoder.get("centered", True))
        self.pad_value = int(self.decoder.get("pad_value", 114))
        norm = self.input.normalization
        c = self.input.shape[1]
        self._scale = norm.scale if norm else 1.0 / 255.0
        self._mean = np.array(norm.mean[:c] if norm else [0.0] * c, np.float32)
        self._std = np.array(norm.std[:c] if norm else [1.0] * c, np.float32)

    @property
    def network_size(self) -> tuple[int, int]:
        return self.input.shape[3], self.input.shape[2]

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, D.Letterbox]:
        w, h = self.network_size
        lb = D.Letterbox.fit(image.shape[1], image.shape[0], w, h, keep_ratio=self.letterbox, centered=self.centered)
        x = lb.apply(image, self.pad_value)
        if self.input.shape[1] == 1:
            x = cv2.cvtColor(x, cv2.COLOR_BGR2GRAY)[:, :, None]
        elif self.input.color == "rgb":
            x = x[:, :, ::-1]
        x = (x.astype(np.float32) * self._scale - self._mean) / self._std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), lb

    def decode(self, outputs: dict[str, np.ndarray]):
        """Raw engine outputs -> (boxes Nx4 network px, scores, classes) before NMS."""
        n = len(self.class_names)
        if self.format == "centernet":
            return D.decode_centernet(outputs[self._heat], outputs[self._ltrb], self.thresholds,
                                      int(self.decoder.get("stride", 4)))
        out = outputs[self.output.name]
        layout = self.output.layout if len(self.output.layout) == 3 else ""
        if self.format in ("yolov5", "yolov8"):
            return D.decode_yolo(out, n, self.thresholds, version=self.format, layout=layout,
                                 normalized=bool(self.decoder.get("normalized", False)), net_size=self.network_size)
        return D.decode_nanodet(out, n, self.thresholds, net_size=self.network_size,
                                strides=tuple(self.decoder.get("strides", (8, 16, 32, 64))),
                                reg_max=int(self.decoder.get("reg_max", 7)), layout=layout)

    def detect(self, image: np.ndarray, header: Header | None = None) -> DetectResult:
        t0 = time.perf_counter()
        image = check_image(image)
        x, lb = self.preprocess(image)
        outputs = self.engine.infer({self.input.name: x})
        boxes, scores, classes = self.decode(outputs)
        boxes = lb.to_input(boxes)
        valid = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        boxes, scores, classes = boxes[valid], scores[valid], classes[valid]
        keep = D.nms(boxes, scores, self.nms_iou, classes, max_out=self.max_detections)
        dets = [Detection2D.from_corners(*(float(v) for v in boxes[i]), class_id=self.class_names[int(classes[i])],
                                         score=float(scores[i])) for i in keep]
        return DetectResult(dets, (time.perf_counter() - t0) * 1000.0, header, list(self.class_names))


def check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a numpy image, got {type(image).__name__}", subject="detect input")
    if image.dtype != np.uint8:
        raise InputError(f"image dtype is {image.dtype}", subject="detect input", hint="pass 8-bit BGR or grey images")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif not (image.ndim == 3 and image.shape[2] == 3):
        raise InputError(f"image shape is {image.shape}", subject="detect input", hint="pass HxWx3 BGR or HxW grey")
    if min(image.shape[:2]) < 1:
        raise InputError(f"image is empty {image.shape}", subject="detect input")
    return image
