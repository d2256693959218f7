"""Users' detectors: YOLOv5 / YOLOv8 / NanoDet-style ONNX exports with a YAML beside them, tiny graphs built here
that emit known boxes; the boxes must come back exactly at input resolution for any input size and aspect ratio."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from perception.detect.decode import Letterbox, nanodet_priors
from perception.detect.detector import Detector
from perception.errors import ModelError

NAMES = ["person", "bicycle", "car"]


def constant_model(path, out_value: np.ndarray, *, net=(64, 48), in_name="images", out_name="output0", opset=13):
    """A graph whose output is `out_value` (+ 0 * mean(input), so the input is used)."""
    w, h = net
    const = numpy_helper.from_array(out_value.astype(np.float32), "box_values")
    zero = numpy_helper.from_array(np.zeros(1, np.float32), "zero")
    nodes = [helper.make_node("ReduceMean", [in_name], ["m"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Mul", ["m", "zero"], ["m0"]),
             helper.make_node("Add", ["box_values", "m0"], [out_name])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, [1, 3, h, w])],
                              [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, list(out_value.shape))],
                              [const, zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="user")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_yaml(path, *, net, out_shape, layout, decoding, decoder):
    w, h = net
    meta = {"task": "detect", "name": "tiny",
            "inputs": [{"name": "images", "shape": [1, 3, h, w], "layout": "NCHW", "color": "rgb",
                        "normalization": {"scale": 0.00392157, "mean": [0, 0, 0], "std": [1, 1, 1]}}],
            "outputs": [{"name": "output0", "shape": list(out_shape), "layout": layout, "decoding": decoding}],
            "classes": [{"name": n} for n in NAMES], "decoder": {"num_classes": 3, **decoder}}
    path.with_suffix(".yaml").write_text(yaml.safe_dump(meta))


# network boxes (x0, y0, x1, y1) in network pixels, class, score
NET_BOXES = [((10.0, 14.0, 22.0, 40.0), 0, 0.9), ((30.0, 20.0, 60.0, 34.0), 2, 0.8)]


def yolo_rows(version: str):
    rows = []
    for (x0, y0, x1, y1), c, s in NET_BOXES:
        cls = np.zeros(3, np.float32)
        cls[c] = s
        head = [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]
        rows.append(head + ([1.0] if version == "yolov5" else []) + list(cls))
    rows.append([5, 5, 4, 4] + ([1.0] if version == "yolov5" else []) + [0.01, 0.02, 0.01])  # below threshold
    return np.array(rows, np.float32)


def expected(in_w, in_h, net, letterbox=True, centered=True):
    lb = Letterbox.fit(in_w, in_h, net[0], net[1], keep_ratio=letterbox, centered=centered)
    return lb.to_input(np.array([b for b, _, _ in NET_BOXES], np.float32))


@pytest.mark.parametrize("version,layout", [("yolov5", "NLC"), ("yolov8", "NCL")])
@pytest.mark.parametrize("in_size", [(200, 100), (37, 53), (641, 479), (1001, 333)])
def test_yolo_boxes_map_back_exactly_for_any_aspect_ratio(tmp_path, version, layout, in_size):
    net = (64, 48)
    rows = yolo_rows(version)
    out = rows[None] if layout == "NLC" else rows.T[None]
    path = constant_model(tmp_path / f"{version}.onnx", out, net=net)
    write_yaml(path, net=net, out_shape=out.shape, layout=layout, decoding=version,
               decoder={"letterbox": True, "score_threshold": 0.25})
    det = Detector(path, backend="onnxruntime")
    w, h = in_size
    result = det.detect(np.zeros((h, w, 3), np.uint8))
    boxes, scores, names = result.arrays()
    assert names == ["person", "car"]  # sorted by score; the low one is thresholded away
    want = expected(w, h, net)
    np.testing.assert_allclose(boxes, want, atol=1e-3)
    # the mapping is the exact inverse of the letterbox applied to the image
    lb = Letterbox.fit(w, h, *net)
    rw, rh = lb.resized
    band = np.array([b for b, _, _ in NET_BOXES], np.float32)  # the network boxes, clipped to the image's band
    band[:, [0, 2]] = band[:, [0, 2]].clip(lb.pad_x, lb.pad_x + rw)
    band[:, [1, 3]] = band[:, [1, 3]].clip(lb.pad_y, lb.pad_y + rh)
    np.testing.assert_allclose(lb.to_network(boxes), band, atol=1e-3)
    assert np.allclose(scores, [0.9, 0.8])


def test_letterbox_pads_the_short_side_and_inverts_exactly():
    lb = Letterbox.fit(200, 100, 64, 48)
    assert lb.resized == (64, 32) and lb.pad_y == 8 and lb.pad_x == 0
    img = np.full((100, 200, 3), 255, np.uint8)
    out = lb.apply(img, 114)
    assert out.shape == (48, 64, 3) and (out[:8] == 114).all() and (out[8:40] == 255).all() and (out[40:] == 114).all()
    # a box covering the whole image maps onto the unpadded band, and back to the whole image
    full = lb.to_network([[0, 0, 200, 100]])
    np.testing.assert_allclose(full, [[0, 8, 64, 40]], atol=1e-4)
    np.testing.assert_allclose(lb.to_input(full), [[0, 0, 200, 100]], atol=1e-4)
    stretched = Letterbox.fit(200, 100, 64, 48, keep_ratio=False)
    np.testing.assert_allclose(stretched.to_input([[0, 0, 64, 48]]), [[0, 0, 200, 100]], atol=1e-4)


def nanodet_output(net, strides=(8, 16), reg_max=7):
    priors = nanodet_priors(net[0], net[1], strides)
    n = len(priors)
    out = np.full((n, 3 + 4 * (reg_max + 1)), -20.0, np.float32)
    out[:, :3] = 0.0  # scores (sigmoid already applied in NanoDet-Plus exports)
    want = []
    # (cell index, distances l t r b in strides, class, score): one stride-8 cell and one stride-16 cell
    for k, dist, cls, score in ((21, (1, 2, 3, 1), 0, 0.7), (53, (1, 1, 2, 1), 2, 0.6)):
        x, y, st = priors[k]
        out[k, cls] = score
        for side, bins in enumerate(dist):
            out[k, 3 + side * (reg_max + 1) + bins] = 20.0  # a one-hot distribution: distance = bins strides
        l, t, r, b = (v * st for v in dist)
        want.append([x - l, y - t, x + r, y + b])
    return out[None], np.array(want, np.float32)


@pytest.mark.parametrize("in_size", [(64, 48), (333, 100), (50, 90)])
def test_nanodet_distributions_decode_and_map_back(tmp_path, in_size):
    net = (64, 48)
    out, want_net = nanodet_output(net)
    path = constant_model(tmp_path / "nanodet.onnx", out, net=net, out_name="output0")
    write_yaml(path, net=net, out_shape=out.shape, layout="NLC", decoding="nanodet",
               decoder={"strides": [8, 16], "reg_max": 7, "letterbox": False, "score_threshold": 0.3})
    det = Detector(path, backend="onnxruntime")
    w, h = in_size
    boxes, scores, names = det.detect(np.zeros((h, w, 3), np.uint8)).arrays()
    assert names == ["person", "car"]
    lb = Letterbox.fit(w, h, *net, keep_ratio=False)
    np.testing.assert_allclose(boxes, lb.to_input(want_net), atol=1e-2)


def test_wrong_yaml_is_refused_naming_the_problem(tmp_path):
    net = (64, 48)
    out, _ = nanodet_output(net)
    path = constant_model(tmp_path / "bad.onnx", out, net=net)
    write_yaml(path, net=net, out_shape=out.shape, layout="NLC", decoding="nanodet",
               decoder={"strides": [8, 16, 32, 64], "reg_max": 7})  # wrong strides: cell count mismatch
    det = Detector(path, backend="onnxruntime")
    with pytest.raises(ModelError, match="strides"):
        det.detect(np.zeros((48, 64, 3), np.uint8))
    write_yaml(path, net=net, out_shape=out.shape, layout="NLC", decoding="ssd", decoder={})
    with pytest.raises(ModelError, match="decoding"):
        Detector(path, backend="onnxruntime")
    write_yaml(path, net=net, out_shape=out.shape, layout="NLC", decoding="nanodet", decoder={"strides": [8, 16]})
    with pytest.raises(ModelError, match="unknown class"):
        Detector(path, backend="onnxruntime", thresholds={"pedestrian": 0.5})
