"""Disparity: known synthetic disparities are recovered, occlusions are refused, bad input is handled."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from perception.errors import InputError
from perception.stereo.disparity import DisparityConfig, compute_disparity, fill_background

H, W = 200, 320


def texture(h=H, w=W, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 1.0)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def slanted_plane_pair(a=20.3, b=0.02, seed=0):
    """Left = random texture; right sees a plane with left-image disparity d(x) = a + b*x (sub-pixel)."""
    left = texture(seed=seed)
    xr, y = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    map_x = (xr + a) / (1.0 - b)  # left column x with x - d(x) = xr
    right = cv2.remap(left, map_x, y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    gt = (a + b * np.arange(W, dtype=np.float32))[None, :].repeat(H, 0)
    return left, right, gt


def occlusion_pair(bg=8, fg=24, x0=140, x1=220, y0=50, y1=150):
    """Textured background at disparity `bg`, a textured box at disparity `fg` in front of it.

    In the left image, background columns [x0 - (fg - bg), x0) next to the box are hidden from the right camera.
    """
    back, front = texture(H, W + 64, 1), texture(H, W + 64, 2)
    xs = np.arange(W)
    left = back[:, xs + 32].copy()
    right = back[:, xs + 32 + bg].copy()  # right(x) = background at left column x + bg
    left[y0:y1, x0:x1] = front[y0:y1, x0 + 32:x1 + 32]
    xr = np.arange(x0 - fg, x1 - fg)
    right[y0:y1, xr] = front[y0:y1, xr + fg + 32]
    gt = np.full((H, W), float(bg), np.float32)
    gt[y0:y1, x0:x1] = fg
    occluded = np.zeros((H, W), bool)
    occluded[y0:y1, x0 - (fg - bg):x0] = True
    return left, right, gt, occluded


def test_slanted_plane_is_recovered_to_sub_pixel():
    left, right, gt = slanted_plane_pair()
    res = compute_disparity(left, right, DisparityConfig(num_disparities=48))
    inner = np.zeros_like(res.valid)
    inner[8:-8, 40:-8] = True  # away from borders where the match leaves the right image
    assert res.valid[inner].mean() > 0.95
    err = np.abs(res.disparity - gt)[inner & res.valid]
    assert np.median(err) < 0.15
    assert (err > 1.0).mean() < 0.01
    assert res.disparity.dtype == np.float32 and res.confidence.dtype == np.float32
    assert res.ms > 0 and res.reason == "" and not res.all_invalid


def test_reduced_resolution_matching_returns_full_size_full_resolution_disparities():
    left, right, gt = slanted_plane_pair()
    res = compute_disparity(left, right, DisparityConfig(num_disparities=48, scale=0.5))
    assert res.disparity.shape == (H, W)
    err = np.abs(res.disparity - gt)[8:-8, 40:-8]
    assert np.nanmedian(err) < 0.5  # in input-resolution pixels, not halved
    assert np.isfinite(err).mean() > 0.9


def test_left_border_is_matched_when_padded():
    left, right, gt = slanted_plane_pair()
    cols = slice(30, 48)  # inside the search range (48) from the left edge but with the match in view
    padded = compute_disparity(left, right, DisparityConfig(num_disparities=48))
    plain = compute_disparity(left, right, DisparityConfig(num_disparities=48, pad_border=False))
    assert padded.valid[:, cols].mean() > 0.9
    assert plain.valid[:, cols].mean() < 0.1
    assert np.nanmedian(np.abs(padded.disparity - gt)[:, cols]) < 0.2


@pytest.mark.parametrize("lr_check", [False, True])
def test_occlusions_are_invalidated_and_fill_uses_the_background(lr_check):
    left, right, gt, occluded = occlusion_pair()
    res = compute_disparity(left, right, DisparityConfig(num_disparities=32, lr_check=lr_check))
    assert (~res.valid[occluded]).mean() > 0.8
    visible = ~occluded
    visible[:, :40] = False  # the left border's matches leave the right image
    assert res.valid[visible].mean() > 0.9
    assert np.nanmedian(np.abs(res.disparity - gt)[visible]) < 0.2
    assert np.all(res.confidence[~res.valid] == 0)

    filled = compute_disparity(left, right, DisparityConfig(num_disparities=32, lr_check=lr_check, fill_holes=True))
    assert filled.filled[occluded].mean() > 0.8
    assert (np.abs(filled.disparity - gt)[occluded] <= 1.0).mean() > 0.8  # background, not the box
    assert np.all(filled.confidence[filled.filled] == 0)
    assert np.array_equal(filled.valid, np.isfinite(filled.disparity))
    assert not np.any(filled.measured & filled.filled)


def test_full_left_right_check_removes_matches_the_builtin_check_lets_through():
    unrelated_l, unrelated_r = texture(seed=5), texture(seed=6)  # nothing here is a true match
    builtin = compute_disparity(unrelated_l, unrelated_r, DisparityConfig(num_disparities=32))
    full = compute_disparity(unrelated_l, unrelated_r, DisparityConfig(num_disparities=32, lr_check=True))
    assert full.valid.mean() < 0.5 * builtin.valid.mean()


@pytest.mark.parametrize("lr_check", [False, True])
def test_confidence_is_low_where_matches_are_wrong_or_flat(lr_check):
    left, right, gt = slanted_plane_pair()
    right[: H // 2, 100:200] = texture(seed=9)[: H // 2, 100:200]  # the right camera sees something else here
    left[H // 2:, 200:280] = 128  # a flat, featureless patch
    right[H // 2:, 175:260] = 128
    res = compute_disparity(left, right, DisparityConfig(num_disparities=48, lr_check=lr_check))
    conf = res.confidence
    assert conf.min() >= 0.0 and conf.max() <= 1.0
    corrupt = np.zeros_like(res.valid)
    corrupt[: H // 2, 125:225] = True
    flat = np.zeros_like(res.valid)
    flat[H // 2 + 5:, 210:270] = True
    clean = np.zeros_like(res.valid)
    clean[H // 2 + 10:, 40:160] = True
    assert conf[clean & res.valid].mean() > 0.9
    assert conf[corrupt & res.valid].mean() < conf[clean & res.valid].mean() - 0.2
    assert conf[flat].max() < 0.1


def test_mono_bgr_and_uint16_inputs_agree():
    left, right, gt = slanted_plane_pair()
    cfg = DisparityConfig(num_disparities=48)
    mono = compute_disparity(left, right, cfg)
    bgr = compute_disparity(cv2.cvtColor(left, cv2.COLOR_GRAY2BGR), cv2.cvtColor(right, cv2.COLOR_GRAY2BGR), cfg)
    deep = compute_disparity(left.astype(np.uint16) * 257, right.astype(np.uint16) * 257, cfg)
    both = mono.valid & bgr.valid & deep.valid
    assert both.mean() > 0.8
    assert np.abs(mono.disparity - bgr.disparity)[both].max() < 1e-6
    assert np.median(np.abs(mono.disparity - deep.disparity)[both]) < 0.1
    color = compute_disparity(cv2.cvtColor(left, cv2.COLOR_GRAY2BGR), cv2.cvtColor(right, cv2.COLOR_GRAY2BGR),
                              DisparityConfig(num_disparities=48, use_color=True))
    assert np.nanmedian(np.abs(color.disparity - gt)[8:-8, 40:-8]) < 0.2


def test_textureless_input_gives_an_all_invalid_result_not_an_exception():
    flat = np.full((H, W), 120, np.uint8)
    res = compute_disparity(flat, flat, DisparityConfig(num_disparities=32))
    assert res.all_invalid and "textureless" in res.reason
    assert np.isnan(res.disparity).all() and not res.valid.any() and (res.confidence == 0).all()
    # random, unrelated images: whatever survives, nothing crashes and masks stay consistent
    res = compute_disparity(texture(seed=5), texture(seed=6), DisparityConfig(num_disparities=32, fill_holes=True))
    assert np.array_equal(res.valid, np.isfinite(res.disparity))


@pytest.mark.parametrize(
    "left, right, match",
    [
        (np.zeros((100, 120), np.uint8), np.zeros((100, 121), np.uint8), "left is 120x100 but right is 121x100"),
        (np.zeros((100, 120), np.float32), np.zeros((100, 120), np.float32), "dtype float32"),
        (np.full((100, 120), np.nan, np.float32), np.zeros((100, 120), np.uint8), "dtype float32"),
        (np.zeros((100, 120, 2), np.uint8), np.zeros((100, 120, 2), np.uint8), "shape"),
        ([[0, 1], [2, 3]], np.zeros((2, 2), np.uint8), "not a numpy image"),
        (np.zeros((100, 120), np.uint8), np.zeros((100, 120, 3), np.uint8), "mono and the other colour"),
        (np.zeros((100, 120), np.uint8), np.zeros((100, 120), np.uint16), "same bit depth"),
    ],
)
def test_malformed_input_is_refused_with_a_reason(left, right, match):
    with pytest.raises(InputError, match=match):
        compute_disparity(left, right)


def test_config_is_validated_and_described():
    for bad in (dict(block_size=4), dict(block_size=13), dict(scale=0.0), dict(scale=1.5), dict(p1=40, p2=32),
                dict(mode="fast"), dict(num_disparities=8), dict(fill_median=4), dict(lr_check="yes"),
                dict(num_disparities=64.5), dict(lr_tolerance=float("nan"))):
        with pytest.raises(InputError, match="DisparityConfig"):
            DisparityConfig(**bad)
    described = DisparityConfig.describe()
    assert set(described) >= {"num_disparities", "block_size", "scale", "lr_tolerance", "fill_holes"}
    assert all(v["help"] for v in described.values())
    assert described["scale"]["range"] == (0.1, 1.0)
    with pytest.raises(InputError, match="does not fit"):
        compute_disparity(texture(40, 60), texture(40, 60), DisparityConfig(num_disparities=64, pad_border=False))


def test_fill_background_takes_the_farther_neighbour_on_the_row():
    d = np.array([[5.0, np.nan, np.nan, 9.0], [np.nan, 3.0, np.nan, np.nan], [np.nan] * 4], np.float32)
    out = fill_background(d)
    np.testing.assert_array_equal(out[0], [5, 5, 5, 9])
    np.testing.assert_array_equal(out[1], [3, 3, 3, 3])
    assert np.isnan(out[2]).all()
