"""`perception eval scene --json` on 3 CamVid test images: every variant's keys, in one run."""
from __future__ import annotations

import contextlib
import io
import json

import pytest

KEYS = {"pixel_acc", "class_acc", "miou", "ms"}


@pytest.mark.data
def test_eval_scene_json_on_three_camvid_test_images(data_dir, tmp_path):
    if not (data_dir / "camvid" / "test").is_dir():
        pytest.skip(f"no camvid/ in {data_dir}")
    pytest.importorskip("skimage")  # the superpixels variant
    from perception.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["eval", "scene", "--json", "--data", str(data_dir), "--limit", "3",
                     "--save-images", str(tmp_path)])
    assert code == 0
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["frames"] == 3 and "notes" not in result, result.get("notes")
    for group in (result, result["baseline"], result["multiscale"], result["superpixels"], result["flip"]):
        assert KEYS <= set(group)
        assert all(isinstance(group[k], float) for k in KEYS)
        assert 0.0 <= group["miou"] <= group["pixel_acc"] <= 1.0 and group["ms"] > 0
        assert len(group["iou_per_class"]) == 11
    assert result["pixel_acc"] > 0.5  # the shipped model is trained: far above chance on real street scenes
    assert result["superpixels"]["ms"] > result["multiscale"]["ms"]  # the vote costs time on top of the network
    assert (tmp_path / "scene_confusion.png").is_file() and (tmp_path / "scene_overlays.png").is_file()
