"""The band pyramid's geometry, tested directly (no pipeline)."""
import math

import numpy as np
import pytest

from perception.errors import InputError
from perception.terrain import bands as B
from perception.terrain.feature_net import build_feature_net
from perception.stereo.plane import up_from_angles

CAM = (500.0, 500.0, 320.0, 240.0, 640, 480)


def test_row_and_distance_are_inverse_and_match_the_flat_camera_formula():
    n = np.array([0.0, -1.0, 0.0])
    rows = B.row_of_distance(np.array([2.0, 10.0, 50.0]), n, 1.0, 500.0, 240.0)
    np.testing.assert_allclose(rows, 240.0 + 500.0 / np.array([2.0, 10.0, 50.0]))
    np.testing.assert_allclose(B.distance_of_row(rows, n, 1.0, 500.0, 240.0), [2.0, 10.0, 50.0])
    assert np.isnan(B.distance_of_row(np.array([230.0]), n, 1.0, 500.0, 240.0)).all()  # above the horizon


def test_bands_tile_the_distances_and_keep_ground_size_about_constant():
    plan = B.plan_bands(up_from_angles(6.0, 0.0), 1.0, CAM)
    bands = plan.bands
    assert math.isinf(bands[-1].far_m)
    for a, b in zip(bands, bands[1:]):
        assert b.near_m == pytest.approx(a.far_m)
    # below max_scale, scale / distance is about constant: a metre of ground is about as many pixels in each band
    ratios = [b.scale / math.sqrt(b.near_m * b.far_m) for b in bands if b.scale < 1.0 and math.isfinite(b.far_m)]
    assert len(ratios) >= 2 and max(ratios) / min(ratios) < 1.6


@pytest.mark.parametrize("roll_deg", [0.0, 6.0])
def test_every_feature_row_lies_at_one_forward_distance_inside_its_band(roll_deg):
    normal = up_from_angles(5.0, roll_deg)
    plan = B.plan_bands(normal, 1.2, CAM)
    uv, band = B.feature_pixels(plan)
    xy = B.ground_points(uv.astype(np.float64), plan)
    offset = 0
    for b in plan.bands[:-1]:  # the last band reaches above the horizon
        n = B.FEATURE_ROWS * b.feature_cols
        x = xy[offset: offset + n, 0].reshape(B.FEATURE_ROWS, b.feature_cols)
        inside = ((uv[offset: offset + n, 0] >= 0) & (uv[offset: offset + n, 0] < 640)).reshape(x.shape)
        for j in (0, 12, 24):
            row = x[j][inside[j]]
            assert np.ptp(row) < 1e-5 * max(1.0, row.mean())  # levelled: constant distance along a row
        assert b.near_m * 0.97 <= x[inside].min() and x[inside].max() <= b.far_m * 1.03
        offset += n


def test_pixel_lookup_finds_the_feature_centred_on_the_pixel():
    plan = B.plan_bands(up_from_angles(4.0, 3.0), 1.0, CAM)
    uv, _ = B.feature_pixels(plan)
    lookup, grid = B.pixel_lookup(plan, (480, 640), step=1)
    ok = (uv[:, 0] >= 0) & (uv[:, 0] < 639) & (uv[:, 1] >= 0) & (uv[:, 1] < 479)
    idx = np.flatnonzero(ok)[::37]
    found = lookup[np.round(uv[idx, 1]).astype(int).clip(0, 479), np.round(uv[idx, 0]).astype(int).clip(0, 639)]
    assert np.mean(found == idx) > 0.9  # the rest sit on a cell border


def test_chunks_stitch_into_the_features_of_one_wide_band():
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (480, 640, 3), np.uint8)
    plan = B.plan_bands(up_from_angles(6.0, 0.0), 1.0, CAM)
    strips = B.extract_bands(image, plan)
    assert strips.shape == (plan.n_chunks, 3, B.HEIGHT, B.WIDTH) and np.isfinite(strips).all()
    narrow = ort.InferenceSession(build_feature_net(width=B.WIDTH).SerializeToString())
    feats = np.concatenate([narrow.run(None, {"yuv_band": strips[i: i + 1]})[0] for i in range(len(strips))])
    rows = B.assemble_features(feats, plan)
    assert rows.shape == (plan.n_features, 100)
    # a band with 2 chunks, computed as one wide strip by a net built for that width
    k = next(i for i, b in enumerate(plan.bands) if b.chunks == 2)
    first = sum(b.chunks for b in plan.bands[:k])
    full = np.concatenate([strips[first], strips[first + 1][:, :, B.WIDTH - B.CHUNK_STEP:]], axis=2)
    wide = ort.InferenceSession(build_feature_net(width=full.shape[2]).SerializeToString())
    ref = wide.run(None, {"yuv_band": full[None]})[0][0]  # 100 x 25 x cols
    start = sum(B.FEATURE_ROWS * b.feature_cols for b in plan.bands[:k])
    got = rows[start: start + B.FEATURE_ROWS * plan.bands[k].feature_cols].reshape(B.FEATURE_ROWS, -1, 100)
    np.testing.assert_allclose(got, ref.transpose(1, 2, 0)[:, : got.shape[1]], atol=1e-5)


def test_a_plane_without_horizon_or_height_is_refused():
    with pytest.raises(InputError):
        B.plan_bands(np.array([0.0, 0.0, -1.0]), 1.0, CAM)
    with pytest.raises(InputError):
        B.plan_bands(np.array([0.0, -1.0, 0.0]), float("nan"), CAM)
