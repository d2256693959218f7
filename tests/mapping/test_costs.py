"""Cost conventions: Nav2 <-> OccupancyGrid as Nav2 does it, and the LAGR cost formula with its edge cases."""
from __future__ import annotations

import numpy as np
import pytest

from perception.errors import InputError
from perception.mapping import costs
from perception.mapping.costs import (
    LETHAL_OBSTACLE, NO_INFORMATION, CostParams, lagr_cost, lagr_occupancy, lagr_score, nav2_to_occupancy,
    occupancy_to_nav2, score_to_cost,
)


def test_nav2_to_occupancy_is_nav2s_publishing_table():
    c = np.arange(256)
    occ = nav2_to_occupancy(c)
    assert occ.dtype == np.int8
    assert occ[[0, 1, 252, 253, 254, 255]].tolist() == [0, 1, 98, 99, 100, -1]
    # 1 + (97 * (c - 1)) // 251 in between, monotone
    assert occ[128] == 1 + (97 * 127) // 251 == 50
    assert np.all(np.diff(occ[:255].astype(int)) >= 0)
    with pytest.raises(InputError):
        nav2_to_occupancy(np.array([256]))


def test_occupancy_to_nav2_is_nav2s_static_layer():
    occ = np.array([-1, 0, 1, 50, 99, 100], np.int8)
    assert occupancy_to_nav2(occ).tolist() == [255, 0, 2, 127, 251, 254]  # int(v / 100 * 254)
    assert occupancy_to_nav2(occ, trinary=True).tolist() == [255, 0, 0, 0, 0, 254]  # Nav2's default
    assert occupancy_to_nav2(occ, track_unknown=False)[0] == 0
    # a round trip keeps free, lethal and unknown exactly and graded costs within 3 %
    c = np.arange(256)
    back = occupancy_to_nav2(nav2_to_occupancy(c)).astype(int)
    assert back[[0, 254, 255]].tolist() == [0, 254, 255]
    assert np.abs(back[1:253] - c[1:253]).max() <= 8
    with pytest.raises(InputError):
        occupancy_to_nav2(np.array([101]))


def test_worked_examples_of_the_docstring():
    bins = np.array([[1, 3, 0, 1, 0], [0, 0.5, 1, 2, 0.5], [0, 0, 0, 0, 3], [5, 0, 0, 0, 0],
                     [0, 0.01, 0, 0, 0], [0, 0, 0, 0, 0]])
    np.testing.assert_allclose(lagr_score(bins)[:5], [-4 / 6, 0.8, 1.5, -10 / 6, -0.01 / 1.01])
    assert lagr_cost(bins).tolist() == [33, 223, 254, 0, 99, 255]
    assert lagr_occupancy(bins).tolist() == [13, 86, 100, 0, 38, -1]
    assert lagr_cost(bins).dtype == np.uint8 and lagr_occupancy(bins).dtype == np.int8


def test_piecewise_formula_edges():
    p = CostParams(min_cost=10, unexplored_cost=60)
    s = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 0.999, 1.0, 1.0001, 7.0])
    # S <= 0: unexplored + S (unexplored - min); 0 < S <= 1: unexplored + S (lethal - unexplored); > 1 lethal
    assert score_to_cost(s, p).tolist() == [10, 10, 35, 60, 157, 252, 254, 254, 254]
    # non-lethal results never reach 253 (inscribed: the inflation layer's value) or 254
    fine = np.linspace(-2, 0.99999, 10001)
    assert score_to_cost(fine, p).max() == 252
    assert score_to_cost(np.nan) == NO_INFORMATION


def test_gain_offset_and_weights_act_as_written():
    one_obstacle = np.array([0, 0, 0, 1.0, 0])
    assert lagr_score(one_obstacle, CostParams(offset=0.0)) == pytest.approx(1.0)  # S = w_obstacle
    assert lagr_score(one_obstacle, CostParams(offset=1.0)) == pytest.approx(0.5)  # thin evidence: halfway
    assert lagr_score(one_obstacle, CostParams(offset=1.0, gain=2.0)) == pytest.approx(1.0)
    # evidence piles up: 3 obstacle observations with c = 1 reach 0.75, 9 reach 0.9
    assert lagr_score(9 * one_obstacle) == pytest.approx(0.9)
    # one more super-ground than super-obstacle observation tips the balance to ground
    assert lagr_score(np.array([2, 0, 0, 0, 1.0])) < 0
    weights = CostParams(class_weights=(-1, -0.5, 0.0, 0.5, 1)).class_weights
    assert lagr_score(np.array([0, 0, 4.0, 0, 0]), CostParams(class_weights=weights)) == 0.0


def test_no_evidence_is_unknown_not_unexplored():
    p = CostParams(min_evidence=0.5)
    bins = np.array([[0, 0.4, 0, 0, 0], [0, 0.6, 0, 0, 0]])
    assert lagr_cost(bins, p).tolist() == [NO_INFORMATION, 100 - round(0.6 / 1.6 * 100)]
    assert lagr_occupancy(np.zeros((2, 3, 5))).tolist() == [[-1] * 3] * 2


def test_params_are_validated():
    with pytest.raises(InputError, match="ordered"):
        CostParams(class_weights=(1, -1, 0, 1, 2))
    with pytest.raises(InputError, match="5 finite"):
        CostParams(class_weights=(-1, 1))
    with pytest.raises(InputError):
        CostParams(unexplored_cost=253)
    with pytest.raises(InputError):
        CostParams(min_cost=120, unexplored_cost=100)
    with pytest.raises(InputError):
        CostParams(gain=0)
    with pytest.raises(InputError, match="5 bins"):
        lagr_score(np.zeros((3, 4)))
    assert costs.LETHAL_OBSTACLE == LETHAL_OBSTACLE == 254 and costs.OCCUPANCY_UNKNOWN == -1
