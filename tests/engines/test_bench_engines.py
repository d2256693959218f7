"""`perception bench engines --json`: the last stdout line is one JSON object of numeric metrics."""
from __future__ import annotations

import json

import numpy as np
import pytest

from perception.cli import main
from perception.engines.bench import synthetic_images

NUMERIC = ("fp32_ms", "fp32_p90_ms", "int8_ms", "int8_p90_ms", "int8_max_abs_diff", "int8_rel_err", "int8_rmse",
           "int8_cosine", "threads")


def _bench(capsys, *extra: str) -> dict:
    code = main(["bench", "engines", "--json", "--repeats", "3", "--warmup", "1", *extra])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and out
    return json.loads(out[-1])


def test_bench_engines_json_on_synthetic_frames(capsys, monkeypatch):
    monkeypatch.delenv("PERCEPTION_DATA", raising=False)
    result = _bench(capsys, "--max-images", "3", "--threads", "1")
    for key in NUMERIC:
        assert isinstance(result[key], (int, float)) and not isinstance(result[key], bool), key
    assert result["fp32_ms"] > 0 and result["int8_ms"] > 0 and result["threads"] == 1
    assert result["calibration"] == "synthetic" and result["calibration_images"] == 3
    assert result["input_shape"] == [1, 3, 36, 484] and result["model"].endswith("terrain_features.onnx")
    assert result["backend"].startswith("onnxruntime")
    # INT8 is lossy but close: quantized (not identical) and within 20% of the fp32 output range
    assert 0 < result["int8_max_abs_diff"] and result["int8_rel_err"] < 0.2 and result["int8_cosine"] > 0.95


@pytest.mark.data
def test_bench_engines_calibrates_on_the_shipped_list(capsys, data_dir, monkeypatch):
    monkeypatch.setenv("PERCEPTION_DATA", str(data_dir))
    result = _bench(capsys, "--max-images", "8")
    assert result["calibration"] == "list:calibration/int8/terrain_features.txt"
    assert result["calibration_images"] == 8 and result["calibration_skipped"] == 0 and result["held_out_samples"] >= 2
    assert result["int8_rel_err"] < 0.2


def test_synthetic_frames_are_deterministic_with_a_natural_spectrum():
    a, b = synthetic_images(2, seed=7, size=(96, 128)), synthetic_images(2, seed=7, size=(96, 128))
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and not np.array_equal(a[0], a[1])
    gray = a[0].mean(axis=2)
    power = np.abs(np.fft.fft2(gray - gray.mean())) ** 2
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(96), np.fft.fftfreq(128), indexing="ij"))
    band = (f > 0.02) & (f < 0.4)
    slope = np.polyfit(np.log(f[band]), np.log(power[band] + 1e-9), 1)[0]
    assert -3.5 < slope < -1.0  # natural images: power falls off about as 1/f^2
