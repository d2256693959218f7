"""Class-to-cost table and the scene metrics."""
from __future__ import annotations

import numpy as np
import pytest

from perception.errors import InputError
from perception.scene.costs import SceneCostTable
from perception.scene.metrics import confusion, scores


def test_cost_table_maps_class_names_to_nav2_costs():
    table = SceneCostTable(road=5, min_confidence=0.6)
    names = ["Sky", "Road", "SignSymbol", "Pavement", "my-new-class"]
    assert table.lut(names)[:5].tolist() == [255, 5, 254, 0, 255]
    mask = np.array([[1, 2], [3, 4]], np.uint8)
    conf = np.array([[0.9, 0.9], [0.5, 0.9]], np.float32)
    assert table.cost_image(mask, names, conf).tolist() == [[5, 254], [255, 255]]
    with pytest.raises(InputError, match="road"):
        SceneCostTable(road=300)


def test_metrics_on_a_hand_counted_example():
    truth = np.array([[0, 0, 1, 1], [2, 2, 255, 1]], np.uint8)
    pred = np.array([[0, 1, 1, 1], [2, 0, 0, 1]], np.uint8)
    conf = confusion(truth, pred, 3)
    assert conf.sum() == 7 and conf.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 1]]
    s = scores(conf)
    assert s["pixel_acc"] == pytest.approx(5 / 7)
    assert s["class_acc"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert s["miou"] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)


def test_networks_keep_static_quarter_resolution_outputs_for_odd_sizes():
    torch = pytest.importorskip("torch")
    from perception.scene.models import build_model, output_size

    for arch, kw in (("lite", {}), ("farabet", {"widths": (4, 4, 8), "scales": 3}), ("farabet", {"scales": 1,
                                                                                                  "widths": (4, 4, 8)})):
        net = build_model(arch, 5, **kw).eval()
        for h, w in ((45, 61), (48, 64), (37, 50)):
            with torch.no_grad():
                out = net(torch.zeros(1, 3, h, w))
            assert tuple(out.shape) == (1, 5, *output_size(h, w)), (arch, h, w)
            assert torch.allclose(out.sum(1), torch.ones(1)), "softmax output"
