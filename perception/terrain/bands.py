"""The horizon-levelled, distance-normalised band pyramid of the LAGR long-range vision (REFERENCE.md section 1).

From the ground plane (`normal . p + d = 0` in the left optical frame, normal up, d = camera height) and the
rectified intrinsics, the image is cut into bands of forward ground distance X (along the ground, from the camera's
foot) spaced geometrically: [near_m, near_m * ratio), [near_m * ratio, near_m * ratio^2), ... Each band is resampled
so that its distance range fills the `USEFUL_ROWS` central rows of a `HEIGHT`-row strip: the scale is about
proportional to the distance, so a given ground size has about the same pixel size in every band, which is what
lets one feature extractor and one classifier work from 2 m to the horizon. A band whose scale would exceed
`max_scale` (no invented detail) keeps that scale and covers a longer range; the last band runs to the horizon and
a little above it (trees and walls standing there).

Geometry, all affine per band (no remap tables):
- levelling: the ray (x, y, 1) in normalised coordinates is rotated about the optical axis by the roll angle that
  makes the plane normal's x component zero; in the levelled camera, rows of constant forward distance X are
  straight image rows: y'(X) = -(d f_z + X n'_z) / (X n'_y + d f_y), with n' the levelled normal and f the
  forward ground direction (both have zero x);
- band pixel (x_b, y_b) -> levelled pixel (u'0 + x_b / s, v'_top + (y_b - PAD) / s) -> normalised -> un-rolled ->
  source pixel; `Band.affine` is that 2x3 matrix (band -> source), sampled with cv2.warpAffine(WARP_INVERSE_MAP)
  from the pyramid level whose scale is nearest above the band's (antialiasing for the near bands).

Feature vector (j, c) of a band (the feature net's output row j, column c; net receptive field 12 x 25, stride
1 x 4) is centred on band pixel (4 c + 12, j + 5.5): rows 5.5 .. 29.5 are exactly the band's distance range, so
the 25 feature rows tile it without overlap. Bands wider than the net's static width are cut into chunks that
overlap by 24 columns and step by 460 = 115 x 4, so the chunks' feature columns tile the band exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from perception.errors import InputError
from perception.params import describe_config, param, validate_config
from perception.stereo.plane import intrinsics
from perception.terrain import preprocess

HEIGHT = 36  # strip rows (the feature net's static input height)
WIDTH = 484  # strip columns per chunk (the feature net's static input width)
WINDOW = (12, 25)  # rows, cols seen by one feature vector
STRIDE = 4  # columns between feature vectors
PAD = (WINDOW[0] - 1) / 2.0  # 5.5: band row of the centre of feature row 0
USEFUL_ROWS = HEIGHT - WINDOW[0]  # 24: rows between the first and the last feature row centre
FEATURE_ROWS = HEIGHT - WINDOW[0] + 1  # 25
CHUNK_STEP = WIDTH - (WINDOW[1] - 1)  # 460: chunks overlap by the window width minus one
FEATURE_COLS = CHUNK_STEP // STRIDE  # 115 feature columns per chunk
MAX_LEVEL = 4  # deepest pyramid level used for the near bands


@dataclass(frozen=True)
class BandConfig:
    """Where the bands are; each parameter has a description and a range, checked on creation."""

    near_m: float = param(0.5, "forward ground distance where the nearest band starts, or the image bottom when "
                          "that is farther, m", 0.2, 50.0)
    ratio: float = param(2.0, "distance ratio between consecutive band boundaries (geometric spacing)", 1.1, 10.0)
    max_bands: int = param(8, "most bands cut from one frame", 1, 32)
    max_scale: float = param(1.0, "largest resampling factor of a band (1 = full resolution, >1 upsamples)",
                             0.05, 4.0)
    max_distance_m: float = param(200.0, "features whose ground point is farther than this get no map point, m",
                                  10.0, 10000.0)
    max_shrink: float = param(0.2, "a band may be shrunk by up to this share to save a chunk of network time",
                              0.0, 0.5)
    above_horizon_rows: int = param(24, "band rows (at the last band's scale) classified above the horizon, for "
                                    "obstacles standing at the horizon", 0, 200)

    def __post_init__(self) -> None:
        validate_config(self)

    @classmethod
    def describe(cls) -> dict[str, dict]:
        return describe_config(cls)


@dataclass(frozen=True)
class Band:
    """One band: forward distance range [near_m, far_m) (far_m = inf for the last), scale, pyramid level,
    `affine` (2x3, band pixel -> source pixel at level 0), band `width` (px) and `chunks` of WIDTH columns."""

    index: int
    near_m: float
    far_m: float
    scale: float
    level: int
    v_top: float  # levelled row of the band's first feature row centre
    u0: float  # levelled column of the band's column 0
    affine: np.ndarray
    width: int
    chunks: int

    @property
    def feature_cols(self) -> int:
        return self.chunks * FEATURE_COLS


@dataclass(frozen=True)
class BandPlan:
    """The bands of one frame and the levelling that produced them."""

    bands: tuple[Band, ...]
    roll_rad: float  # rotation about the optical axis from the source to the levelled camera
    normal: np.ndarray  # ground normal (source optical frame)
    d: float  # camera height above the plane, m
    camera: tuple[float, float, float, float, int, int]  # fx, fy, cx, cy, width, height

    @property
    def n_chunks(self) -> int:
        return sum(b.chunks for b in self.bands)

    @property
    def n_features(self) -> int:
        return sum(b.feature_cols for b in self.bands) * FEATURE_ROWS


def _levelled_normal(normal: np.ndarray) -> tuple[float, np.ndarray]:
    nx, ny, nz = (float(v) for v in normal)
    roll = math.atan2(nx, ny) if ny < 0 else math.atan2(-nx, -ny)
    # pick the solution with n'_y < 0 (up is -y in the optical frame)
    c, s = math.cos(roll), math.sin(roll)
    n = np.array([c * nx - s * ny, s * nx + c * ny, nz])
    if n[1] > 0:
        roll += math.pi
        n = np.array([-n[0], -n[1], nz])
    return roll, n


def _forward(n: np.ndarray) -> np.ndarray:
    f = np.array([0.0, 0.0, 1.0]) - n[2] * n
    return f / np.linalg.norm(f)


def row_of_distance(x_m, n_lev: np.ndarray, d: float, fy: float, cy: float):
    """Levelled image row of forward ground distance X (m); inf -> the horizon row."""
    f = _forward(n_lev)
    x = np.asarray(x_m, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(np.isinf(x), -n_lev[2] / n_lev[1], -(d * f[2] + x * n_lev[2]) / (x * n_lev[1] + d * f[1]))
    return cy + fy * y


def distance_of_row(v, n_lev: np.ndarray, d: float, fy: float, cy: float):
    """Forward ground distance (m) of levelled row v; NaN at and above the horizon."""
    f = _forward(n_lev)
    y = (np.asarray(v, dtype=np.float64) - cy) / fy
    with np.errstate(invalid="ignore", divide="ignore"):
        den = n_lev[1] * y + n_lev[2]
        x = -d * (y * f[1] + f[2]) / den
    return np.where((den < 0) & (x > 0), x, np.nan)


def _affine(scale: float, u0: float, v_top: float, roll: float, cam) -> np.ndarray:
    """Band pixel -> source pixel: levelled (u0 + x/s, v_top + (y - PAD)/s) -> normalised -> un-rolled."""
    fx, fy, cx, cy, _w, _h = cam
    c, s_ = math.cos(roll), math.sin(roll)
    # levelled normalised: x' = (u0 + xb/s - cx)/fx, y' = (v_top + (yb - PAD)/s - cy)/fy
    a = np.array([[1.0 / (scale * fx), 0.0, (u0 - cx) / fx],
                  [0.0, 1.0 / (scale * fy), (v_top - PAD / scale - cy) / fy]])
    rot_t = np.array([[c, s_], [-s_, c]])  # source = Rz^T levelled (Rz rotates source -> levelled)
    b = rot_t @ a
    k = np.array([[fx, 0.0], [0.0, fy]])
    m = k @ b
    m[:, 2] += (cx, cy)
    return m


def _band_width(span: float, scale: float) -> int:
    return int(math.ceil(span * scale / STRIDE)) * STRIDE + 1


def _chunk_span(chunks: int) -> int:
    return (chunks - 1) * CHUNK_STEP + WIDTH


def _chunks_for(width: int) -> int:
    return 1 if width <= WIDTH else math.ceil((width - WIDTH) / CHUNK_STEP) + 1


def plan_bands(normal, d: float, camera, config: BandConfig | None = None) -> BandPlan:
    """Bands for a frame with ground plane (normal, d) seen by `camera` (CameraInfo or (fx, fy, cx, cy, w, h)).

    >>> import numpy as np
    >>> plan = plan_bands(np.array([0.0, -1.0, 0.0]), 1.0, (500.0, 500.0, 320.0, 240.0, 640, 480))
    >>> [round(b.near_m, 1) for b in plan.bands][:3], plan.bands[-1].far_m
    ([2.1, 4.2, 8.4], inf)
    """
    config = config or BandConfig()
    cam = intrinsics(camera)
    fx, fy, cx, cy, w, h = cam
    normal = np.asarray(normal, dtype=np.float64)
    if normal.shape != (3,) or not np.all(np.isfinite(normal)) or not (math.isfinite(d) and d > 0):
        raise InputError(f"ground plane normal {normal.tolist()} d {d}", subject="plan_bands",
                         hint="a finite unit normal pointing up and a positive camera height are needed")
    normal = normal / np.linalg.norm(normal)
    roll, n_lev = _levelled_normal(normal)
    if n_lev[1] > -0.05:
        raise InputError("the camera looks along the ground normal: no horizon", subject="plan_bands")
    c, s_ = math.cos(roll), math.sin(roll)
    # levelled extent of the source image (corners rotated into the levelled camera)
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], dtype=np.float64)
    xn, yn = (corners[:, 0] - cx) / fx, (corners[:, 1] - cy) / fy
    u_lev = cx + fx * (c * xn - s_ * yn)
    v_lev = cy + fy * (s_ * xn + c * yn)
    u0, u1 = float(u_lev.min()), float(u_lev.max())
    v_bottom = float(v_lev.max())
    v_horizon = float(row_of_distance(np.inf, n_lev, d, fy, cy))
    near = max(config.near_m, float(distance_of_row(v_bottom, n_lev, d, fy, cy)))
    if not math.isfinite(near):
        raise InputError("no ground visible below the horizon", subject="plan_bands")
    bands = []
    v_near = float(row_of_distance(near, n_lev, d, fy, cy))
    v_stop = v_horizon - config.above_horizon_rows / config.max_scale  # the top of the last band
    for k in range(config.max_bands):
        x_near = float(distance_of_row(v_near, n_lev, d, fy, cy)) if k else near
        x_near = x_near if math.isfinite(x_near) else math.inf
        scale = config.max_scale
        if math.isfinite(x_near):
            v_geo = float(row_of_distance(x_near * config.ratio, n_lev, d, fy, cy))
            scale = min(config.max_scale, USEFUL_ROWS / max(v_near - v_geo, 1e-6))
        if k == config.max_bands - 1:  # out of bands: this one stretches to the top
            scale = min(scale, USEFUL_ROWS / max(v_near - v_stop, 1e-6))
        # a band a little too wide for its chunks is narrowed (a slightly smaller scale covers a slightly longer
        # range) rather than paying a whole extra chunk of network time for a few columns
        chunks = _chunks_for(_band_width(u1 - u0, scale))
        if chunks > 1 and _band_width(u1 - u0, scale * (1 - config.max_shrink)) <= _chunk_span(chunks - 1):
            scale = (_chunk_span(chunks - 1) - 1 - STRIDE) / (u1 - u0)
        v_far = v_near - USEFUL_ROWS / scale
        last = v_far <= v_stop + 1e-6 or k == config.max_bands - 1
        x_far = float(distance_of_row(v_far, n_lev, d, fy, cy))
        x_far = x_far if math.isfinite(x_far) and not last else math.inf
        level = int(min(MAX_LEVEL, max(0, math.floor(math.log2(1.0 / scale))))) if scale < 1 else 0
        width = _band_width(u1 - u0, scale)
        aff = _affine(scale, u0, v_far, roll, cam)
        bands.append(Band(k, x_near, x_far, scale, level, v_far, u0, aff, width, _chunks_for(width)))
        if last or x_far > config.max_distance_m:
            break
        v_near = v_far
    return BandPlan(tuple(bands), roll, normal, float(d), cam)


def yuv_pyramid(bgr: np.ndarray, levels: int) -> list[np.ndarray]:
    """YUV float32 in [0, 1] at levels 0..`levels` (cv2.pyrDown: Gaussian 5x5 then 2x decimation)."""
    if bgr.ndim == 2:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise InputError(f"image {bgr.shape} {bgr.dtype}", subject="band pyramid", hint="expected BGR uint8 HxWx3")
    out = [cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV).astype(np.float32) * np.float32(preprocess.SCALE)]
    for _ in range(levels):
        out.append(cv2.pyrDown(out[-1]))
    return out


def _level_affine(aff: np.ndarray, level: int) -> np.ndarray:
    # pyrDown: level pixel i sits at source (i + 0.5) * 2^L - 0.5
    f = 2.0 ** level
    m = aff / f
    m[:, 2] += 0.5 / f - 0.5
    return m


def extract_bands(bgr: np.ndarray, plan: BandPlan) -> np.ndarray:
    """All chunks of all bands as one float32 array (n_chunks, 3, HEIGHT, WIDTH), band order, normalised like
    the feature net expects (YUV, LCN of Y per band, mean/std of the model metadata)."""
    levels = max((b.level for b in plan.bands), default=0)
    pyr = yuv_pyramid(bgr, levels)
    out = np.zeros((plan.n_chunks, 3, HEIGHT, WIDTH), np.float32)
    mean = np.asarray(preprocess.MEAN, np.float32)
    std = np.asarray(preprocess.STD, np.float32)
    i = 0
    for b in plan.bands:
        m = _level_affine(b.affine, b.level)
        full_w = (b.chunks - 1) * CHUNK_STEP + WIDTH
        strip = cv2.warpAffine(pyr[b.level], m, (full_w, HEIGHT), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
        strip[..., 0] = preprocess.lcn(strip[..., 0])
        strip = (strip - mean) / std
        chw = strip.transpose(2, 0, 1)
        for q in range(b.chunks):
            out[i] = chw[:, :, q * CHUNK_STEP: q * CHUNK_STEP + WIDTH]
            i += 1
    return out


def feature_pixels(plan: BandPlan) -> tuple[np.ndarray, np.ndarray]:
    """Source pixel (u, v) of every feature vector's window centre, and its band index, in the order of
    `assemble_features` (band, row j, column c). Returns (uv N x 2 float32, band N int16)."""
    uvs, idx = [], []
    for b in plan.bands:
        cols = b.feature_cols
        xb = STRIDE * np.arange(cols, dtype=np.float64) + (WINDOW[1] - 1) / 2.0
        yb = PAD + np.arange(FEATURE_ROWS, dtype=np.float64)
        xx, yy = np.meshgrid(xb, yb)
        u = b.affine[0, 0] * xx + b.affine[0, 1] * yy + b.affine[0, 2]
        v = b.affine[1, 0] * xx + b.affine[1, 1] * yy + b.affine[1, 2]
        uvs.append(np.stack([u.ravel(), v.ravel()], 1))
        idx.append(np.full(u.size, b.index, np.int16))
    if not uvs:
        return np.zeros((0, 2), np.float32), np.zeros(0, np.int16)
    return np.concatenate(uvs).astype(np.float32), np.concatenate(idx)


def assemble_features(outputs: np.ndarray, plan: BandPlan) -> np.ndarray:
    """Feature-net outputs (n_chunks, 100, 25, 115), band/chunk order -> N x 100 rows in `feature_pixels` order."""
    rows = []
    i = 0
    for b in plan.bands:
        chunk = outputs[i: i + b.chunks]  # (q, C, 25, 115) -> (25, q * 115, C)
        i += b.chunks
        rows.append(np.ascontiguousarray(chunk.transpose(2, 0, 3, 1)).reshape(-1, chunk.shape[1]))
    return np.concatenate(rows) if rows else np.zeros((0, outputs.shape[1]), np.float32)


def pixels_to_ground(uv: np.ndarray, normal: np.ndarray, d: float, camera) -> np.ndarray:
    """Ground coordinates (forward X, left Y, m; the camera's foot on the plane at the origin) of source pixels
    (N x 2), NaN where the pixel's ray does not meet the ground in front of the camera.

    >>> import numpy as np
    >>> pixels_to_ground(np.array([[320.0, 290.0]]), np.array([0.0, -1.0, 0.0]), 1.0, (500., 500., 320., 240., 640, 480))
    array([[10.,  0.]])
    """
    fx, fy, cx, cy, _w, _h = intrinsics(camera)
    n = np.asarray(normal, dtype=np.float64)
    axes = ground_frame(n, d)[:3, :3]
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    r = np.stack([(uv[:, 0] - cx) / fx, (uv[:, 1] - cy) / fy, np.ones(len(uv))], 1)
    den = r @ n
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(den < -1e-9, -d / den, np.nan)
    p = r * t[:, None]
    return p @ axes[:2].T


def ground_frame(normal: np.ndarray, d: float) -> np.ndarray:
    """4x4 transform from the camera's optical frame to the ground frame of `pixels_to_ground`: origin at the
    camera's foot on the plane n.p + d = 0 (n the unit up normal in the optical frame, d the camera height),
    x forward (the optical axis projected on the plane), y left, z up.

    >>> ground_frame(np.array([0.0, -1.0, 0.0]), 1.5) @ [0.0, 0.0, 10.0, 1.0]  # 10 m ahead at camera height
    array([10. ,  0. ,  1.5,  1. ])
    """
    n = np.asarray(normal, dtype=np.float64)
    f = np.array([0.0, 0.0, 1.0]) - n[2] * n
    f /= np.linalg.norm(f)
    T = np.eye(4)
    T[:3, :3] = np.stack([f, np.cross(n, f), n])
    T[2, 3] = float(d)
    return T


def ground_points(uv: np.ndarray, plan: BandPlan) -> np.ndarray:
    """`pixels_to_ground` with the plan's plane and camera."""
    return pixels_to_ground(uv, plan.normal, plan.d, plan.camera)


def pixel_lookup(plan: BandPlan, shape: tuple[int, int], step: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """For every `step`-th source pixel: index of its feature vector (in `feature_pixels` order, -1 none) and
    the grid shape; used to paint per-feature results back into the image."""
    fx, fy, cx, cy, _w, _h = plan.camera
    h, w = shape
    vs = np.arange(0, h, step, dtype=np.float64) + (step - 1) / 2.0
    us = np.arange(0, w, step, dtype=np.float64) + (step - 1) / 2.0
    uu, vv = np.meshgrid(us, vs)
    xn, yn = (uu - cx) / fx, (vv - cy) / fy
    c, s_ = math.cos(plan.roll_rad), math.sin(plan.roll_rad)
    u_lev = cx + fx * (c * xn - s_ * yn)
    v_lev = cy + fy * (s_ * xn + c * yn)
    out = np.full(uu.shape, -1, np.int64)
    offset = 0
    for b in plan.bands:
        yb = (v_lev - b.v_top) * b.scale + PAD
        j = np.floor(yb - PAD + 0.5)
        inside = (j >= 0) & (j < FEATURE_ROWS)
        xb = (u_lev - b.u0) * b.scale
        col = np.floor((xb - (WINDOW[1] - 1) / 2.0) / STRIDE + 0.5)
        inside &= (col >= 0) & (col < b.feature_cols) & (out < 0)
        out[inside] = offset + (j[inside] * b.feature_cols + col[inside]).astype(np.int64)
        offset += FEATURE_ROWS * b.feature_cols
    return out, uu.shape


def footline_points(uv: np.ndarray, xy: np.ndarray, obstacle: np.ndarray, column_px: float = 8.0) -> np.ndarray:
    """Ground points for the map with obstacles placed at their foot (LAGR's footline, in map space).

    A window classified obstacle hides the ground behind it: its pixel's ray meets the ground plane BEYOND the
    obstacle (or not at all above the horizon). Per image column (`column_px` wide), scanning upwards from the
    nearest window, every run of consecutive obstacle windows is one obstacle's face: all of it is placed at the
    ground point of the run's lowest window (the foot). Other windows keep their own points.

    >>> uv = np.array([[10.0, 300.0], [10.0, 250.0], [10.0, 200.0], [10.0, 150.0]])
    >>> xy = np.array([[5.0, 0.0], [8.0, 0.0], [15.0, 0.0], [40.0, 0.0]])
    >>> footline_points(uv, xy, np.array([False, True, True, False]))[:, 0].tolist()
    [5.0, 8.0, 8.0, 40.0]
    """
    out = np.array(xy, dtype=np.float64, copy=True)
    if not len(uv):
        return out
    col = np.floor(uv[:, 0] / column_px).astype(np.int64)
    order = np.lexsort((-uv[:, 1], col))  # by column, then nearest (lowest in the image) first
    o = np.asarray(obstacle, bool)[order]
    c = col[order]
    new_col = np.r_[True, c[1:] != c[:-1]]
    start = o & (new_col | ~np.r_[False, o[:-1]])
    idx = np.arange(len(order))
    foot = np.maximum.accumulate(np.where(start, idx, 0))
    ok = o & np.isfinite(out[order[foot]]).all(1)
    out[order[ok]] = out[order[foot[ok]]]
    return out
