"""Long-range terrain classes learned online from the stereo labels (the LAGR near-to-far method).

Per frame (`LongRange.process`):
1. bands: the distance-normalised band pyramid from the ground plane (`perception.terrain.bands`);
2. features: the feature net (ONNX Runtime here, TensorRT on a robot, through `perception.engines`) on every
   band chunk; one 100-d feature vector per 12 x 25 band window;
3. test, then train: the classifier predicts every window; the windows whose centre lies in a labelled stereo
   window (`NearLabels`) are scored against the stereo label (the paper's error vs stereo, measured BEFORE the
   update, so it is a prediction, not a fit), then the classifier takes its update on them (one step, with its
   class-balanced ring buffers, decaying toward the offline default weights);
4. output: class probabilities of every window after the update, painted back into the image (`classes`: mono8
   codes 0 unknown, 1..5 as the stereo labels; `traversability`: 0..1), and the windows' ground points (forward
   X, left Y from the camera's foot, m) with their probabilities for the map.

Traversability of a window = p(super-ground) + p(ground) + 0.5 p(footline): the score the evaluation's AUROC and
the viewer use; the map uses the full distribution (LAGR cost, `perception.mapping.costs`).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from perception.errors import InputError, ModelError
from perception.params import describe_config, param, validate_config
from perception.stereo.windows import UNKNOWN
from perception.terrain import bands as B
from perception.terrain.classifier import NUM_CLASSES, ClassifierConfig, OnlineClassifier
from perception.terrain.defaults import load_defaults

log = logging.getLogger(__name__)

TRAVERSABILITY_WEIGHTS = np.array([1.0, 1.0, 0.5, 0.0, 0.0], np.float32)  # per class: super-ground .. super-obstacle
SHIPPED_DEFAULTS = "terrain_classifier_defaults.npz"


@dataclass(frozen=True)
class LongRangeConfig:
    """Parameters of the long-range stage; each has a description and a range, checked on creation."""

    learn: bool = param(True, "learn online from the stereo labels (false: keep the default weights)")
    backend: str = param("auto", "inference backend of the feature net", choices=("auto", "onnxruntime", "tensorrt"))
    precision: str = param("fp32", "feature net precision", choices=("fp32", "fp16", "int8"))
    threads: int = param(1, "ONNX Runtime intra-op threads (0: one per core; 1, measured best: the pipeline "
                            "already runs two frames on two threads, docs/performance.md)", 0, 64)
    min_label_confidence: float = param(0.05, "stereo windows with a lower label confidence do not train", 0.0, 1.0)
    image_step: int = param(2, "the class image is computed every n-th pixel and upsampled", 1, 8)
    every_n_frames: int = param(1, "run the long range (bands, feature net, learning, terrain/classes) on every "
                                   "n-th frame; stereo, labels and the maps run on every frame", 1, 100)

    def __post_init__(self) -> None:
        validate_config(self)

    @classmethod
    def describe(cls) -> dict[str, dict]:
        return describe_config(cls)


@dataclass
class LongRangeResult:
    """One frame's long-range output. Arrays are None when the frame had no ground plane (`reason`)."""

    classes: np.ndarray | None = None  # HxW uint8 codes 0 unknown, 1..5
    traversability: np.ndarray | None = None  # HxW float32 0..1, NaN unknown
    probabilities: np.ndarray | None = None  # N x 5 per window (after the update)
    ground_xy: np.ndarray | None = None  # N x 2 forward X, left Y from the camera foot (NaN: no ground point)
    pixels: np.ndarray | None = None  # N x 2 source pixel (u, v) of each window centre
    distance_m: np.ndarray | None = None  # N forward distance (NaN above the horizon)
    near_mask: np.ndarray | None = None  # N bool: the window trained (lies in a labelled stereo window)
    near_targets: np.ndarray | None = None  # n_near x 5 stereo label distributions
    predicted_before: np.ndarray | None = None  # n_near x 5 predictions before this frame's update
    err_vs_stereo: float = float("nan")  # share of trained windows whose predicted class (before update) != stereo
    confidence: float = 0.0  # classifier learning confidence after this frame
    n_windows: int = 0
    n_trained: int = 0
    plan: B.BandPlan | None = None
    reason: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.classes is not None


def shipped_defaults() -> Path | None:
    from perception.engines.catalog import shipped_models_dir

    folder = shipped_models_dir()
    path = folder / SHIPPED_DEFAULTS if folder is not None else None
    return path if path is not None and path.exists() else None


def load_default_classifier(path: str | Path | None, config: ClassifierConfig | None,
                            feature_model: str | Path | None) -> OnlineClassifier:
    """An OnlineClassifier starting from the offline defaults of `path` (checked against `feature_model`).
    None: the shipped defaults when they fit the net in use, else zero weights (with a warning when shipped
    defaults exist but belong to another net)."""
    if path is None:
        shipped = shipped_defaults()
        if shipped is None:
            return OnlineClassifier(config)
        try:
            d = load_defaults(shipped, feature_model)
        except ModelError as err:
            log.warning("%s; the classifier starts from zero weights", err)
            return OnlineClassifier(config)
    else:
        d = load_defaults(path, feature_model)
    return OnlineClassifier(config, d.weights, d.bias)


class LongRange:
    """Stateful per camera (the classifier learns across frames). `engine`: an open feature-net Engine, or None
    to open `model` (None: the shipped engines/terrain_features.onnx). `default_weights`: the classifier's
    offline defaults file (None: the shipped one, `perception.terrain.defaults`)."""

    def __init__(self, config: LongRangeConfig | None = None, bands: B.BandConfig | None = None,
                 classifier: ClassifierConfig | None = None, *, model: str | Path | None = None, engine=None,
                 default_weights: str | Path | None = None) -> None:
        self.config = config or LongRangeConfig()
        self.bands_config = bands or B.BandConfig()
        if engine is None:
            from perception.engines.catalog import shipped_models_dir
            from perception.engines.factory import open_engine

            path = Path(model) if model is not None else shipped_models_dir() / "terrain_features.onnx"
            engine = open_engine(path, backend=self.config.backend, precision=self.config.precision,
                                 task="terrain_features", threads=self.config.threads or None)
        self.engine = engine
        self.classifier = load_default_classifier(default_weights, classifier, engine.path)
        spec = engine.inputs[0]
        shape = tuple(spec.shape)
        if shape[1:] != (3, B.HEIGHT, B.WIDTH):
            raise InputError(f"feature net input {shape}, the band pyramid makes 1x3x{B.HEIGHT}x{B.WIDTH} strips",
                             subject=str(engine.path),
                             hint="export the feature net with the band width 484 (perception train features)")
        self._input = spec.name
        self._output = engine.outputs[0].name

    def close(self) -> None:
        self.engine.close()

    def features(self, strips: np.ndarray) -> np.ndarray:
        """(n_chunks, 3, 36, 484) strips -> (n_chunks, 100, 25, 115) features, one engine run per chunk."""
        return np.concatenate([self.engine.infer({self._input: strips[i: i + 1]})[self._output]
                               for i in range(len(strips))])

    def observe(self, left: np.ndarray, camera, ground) -> FrameFeatures | None:
        """Bands and features of one frame (None without a ground plane)."""
        if ground is None or not ground.ok:
            return None
        h, w = left.shape[:2]
        t0 = time.perf_counter()
        plan = B.plan_bands(ground.primary.normal, ground.primary.d, camera, self.bands_config)
        strips = B.extract_bands(left, plan)
        t1 = time.perf_counter()
        feats = B.assemble_features(self.features(strips), plan)
        uv, _band = B.feature_pixels(plan)
        t2 = time.perf_counter()
        inside = (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
        inside &= np.isfinite(feats).all(1)
        return FrameFeatures(plan, feats, uv, B.ground_points(uv, plan), inside, (h, w),
                             {"bands": (t1 - t0) * 1e3, "features": (t2 - t1) * 1e3})

    def process(self, left: np.ndarray, camera, ground, labels=None) -> LongRangeResult:
        """`left`: rectified BGR (or mono) uint8; `camera`: its CameraInfo; `ground`: GroundEstimate;
        `labels`: NearLabels of the same frame (None or not ok: no training this frame). Never raises for a frame
        without ground (`reason` says why); a malformed image raises InputError."""
        ff = self.observe(left, camera, ground)
        if ff is None:
            return LongRangeResult(reason=f"no ground plane: {getattr(ground, 'reason', 'none given')}")
        res = classify(ff, labels, self.classifier, learn=self.config.learn,
                       min_label_confidence=self.config.min_label_confidence)
        t0 = time.perf_counter()
        res.classes, res.traversability = paint(res.probabilities, ff.plan, ff.shape, self.config.image_step)
        res.timings_ms["paint"] = (time.perf_counter() - t0) * 1e3
        return res


@dataclass
class FrameFeatures:
    """One frame's band windows: the plan, N x 100 features, window centre pixels, ground points (forward, left),
    which windows lie inside the image, the image shape and the stage times."""

    plan: B.BandPlan
    features: np.ndarray
    pixels: np.ndarray
    ground_xy: np.ndarray
    inside: np.ndarray
    shape: tuple[int, int]
    timings_ms: dict[str, float]


def stereo_targets(ff: FrameFeatures, labels, min_label_confidence: float = 0.0):
    """(mask N, targets n x 5, weights n): the windows whose centre lies in a labelled stereo window."""
    near = np.zeros(len(ff.pixels), bool)
    if labels is None or not labels.ok or not labels.windows.size:
        return near, np.zeros((0, NUM_CLASSES), np.float32), np.zeros(0, np.float32)
    h, w = ff.shape
    rows, cols = labels.grid
    wr, wc = labels.window
    iu = np.clip(ff.pixels[:, 0].astype(np.int64), 0, w - 1) // wc
    iv = np.clip(ff.pixels[:, 1].astype(np.int64), 0, h - 1) // wr
    rec = labels.windows[np.clip(iv, 0, rows - 1) * cols + np.clip(iu, 0, cols - 1)]
    near = ff.inside & (rec["class"] != UNKNOWN) & (rec["confidence"] > min_label_confidence)
    return near, rec["probabilities"][near], rec["confidence"][near]


def classify(ff: FrameFeatures, labels, classifier: OnlineClassifier, *, learn: bool = True,
             min_label_confidence: float = 0.0) -> LongRangeResult:
    """Test, then train (module docstring) one frame's windows with `classifier`; no painting."""
    res = LongRangeResult(plan=ff.plan, pixels=ff.pixels, ground_xy=ff.ground_xy, distance_m=ff.ground_xy[:, 0],
                          n_windows=int(ff.inside.sum()), timings_ms=dict(ff.timings_ms))
    t0 = time.perf_counter()
    near, targets, weights = stereo_targets(ff, labels, min_label_confidence)
    probs = np.full((len(ff.pixels), NUM_CLASSES), np.nan, np.float32)
    probs[ff.inside] = classifier.predict_proba(ff.features[ff.inside])
    if near.any():
        before = probs[near]
        res.predicted_before, res.near_targets = before, targets
        res.err_vs_stereo = float(np.mean(np.argmax(before, 1) != np.argmax(targets, 1)))
        res.n_trained = int(near.sum())
        if learn:
            classifier.update(ff.features[near], targets, weights)
            probs[ff.inside] = classifier.predict_proba(ff.features[ff.inside])
    res.near_mask = near
    res.probabilities = probs
    res.confidence = float(classifier.confidence)
    res.timings_ms["update"] = (time.perf_counter() - t0) * 1e3
    return res


def map_observations(res: LongRangeResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ground points N x 2, probabilities N x 5, weights N) of the windows that go to the map: not the
    stereo-trained ones (stereo maps those itself), obstacles moved to their foot (`bands.footline_points`), finite
    points only; weight = certainty, 1 - entropy / log 5 (a window unsure of its class says little about the place)."""
    probs = res.probabilities
    known = np.isfinite(probs).all(1)
    cls = np.where(known, np.argmax(np.nan_to_num(probs), 1), 0)
    xy = B.footline_points(res.pixels, res.ground_xy, known & (cls >= 2))
    use = known & ~res.near_mask & np.isfinite(xy).all(1)
    p = np.clip(probs[use], 1e-6, 1.0)
    certainty = 1.0 + (p * np.log(p)).sum(1) / np.log(NUM_CLASSES)
    return xy[use], probs[use], np.clip(certainty, 0.0, 1.0).astype(np.float32)


def traversability_of(probs: np.ndarray) -> np.ndarray:
    """Per-window traversability score from the class probabilities (module docstring)."""
    return probs @ TRAVERSABILITY_WEIGHTS


def paint(probs: np.ndarray, plan: B.BandPlan, shape: tuple[int, int], step: int = 2
      ) -> tuple[np.ndarray, np.ndarray]:
    """Per-window probabilities -> (class codes HxW uint8, traversability HxW float32) at input resolution."""
    h, w = shape
    lookup, grid = B.pixel_lookup(plan, shape, step)
    idx = lookup.ravel()
    have = idx >= 0
    p = np.full((idx.size, NUM_CLASSES), np.nan, np.float32)
    p[have] = probs[idx[have]]
    ok = np.isfinite(p).all(1)
    cls = np.zeros(idx.size, np.uint8)
    cls[ok] = np.argmax(p[ok], 1).astype(np.uint8) + 1
    trav = np.full(idx.size, np.nan, np.float32)
    trav[ok] = p[ok] @ TRAVERSABILITY_WEIGHTS
    cls, trav = cls.reshape(grid), trav.reshape(grid)
    if step > 1:
        cls = cv2.resize(cls, (grid[1] * step, grid[0] * step), interpolation=cv2.INTER_NEAREST)[:h, :w]
        trav = cv2.resize(trav, (grid[1] * step, grid[0] * step), interpolation=cv2.INTER_NEAREST)[:h, :w]
    return np.ascontiguousarray(cls), np.ascontiguousarray(trav)
