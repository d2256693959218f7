"""perception.params: validated config fields (scalars, choices, tuples with per-element ranges and lengths)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from perception.errors import InputError
from perception.params import describe_config, param, validate_config


@dataclass(frozen=True)
class Cfg:
    count: int = param(3, "a count", 1, 9)
    gain: float = param(0.5, "a gain", 0.0, 1.0)
    on: bool = param(True, "a switch")
    mode: str = param("fast", "a mode", choices=("fast", "slow"))
    weights: tuple = param((-1.0, 0.0, 1.0), "three weights", -2.0, 2.0, length=3)
    sizes: tuple = param((1, 2), "any number of integer sizes", 1, 100)
    free: tuple = param((0.5,), "any finite numbers")

    def __post_init__(self) -> None:
        validate_config(self)


def test_defaults_pass_and_describe_lists_every_field():
    cfg = Cfg()
    assert cfg.weights == (-1.0, 0.0, 1.0) and cfg.sizes == (1, 2)
    info = describe_config(Cfg)
    assert list(info) == ["count", "gain", "on", "mode", "weights", "sizes", "free"]
    assert info["count"]["range"] == (1, 9) and info["mode"]["choices"] == ("fast", "slow")
    assert info["weights"] == {"default": (-1.0, 0.0, 1.0), "help": "three weights", "range": (-2.0, 2.0),
                               "choices": None}
    assert all(v["help"] for v in info.values())


@pytest.mark.parametrize("bad, match", [
    (dict(count=0), "outside the valid range"), (dict(count=2.5), "integer"), (dict(count=True), "integer"),
    (dict(gain=float("nan")), "outside"), (dict(gain="0.5"), "number"), (dict(on=1), "true or false"),
    (dict(mode="medium"), "use one of"),
])
def test_scalar_fields_are_checked(bad, match):
    with pytest.raises(InputError, match=match) as err:
        Cfg(**bad)
    assert f"Cfg.{next(iter(bad))}" in str(err.value)


def test_tuple_fields_take_any_sequence_and_store_a_tuple_of_the_default_element_type():
    cfg = Cfg(weights=[2, -2, np.float32(0.25)], sizes=np.array([3, 4, 5]), free=[1e9, -1e9])
    assert cfg.weights == (2.0, -2.0, 0.25) and all(type(v) is float for v in cfg.weights)
    assert cfg.sizes == (3, 4, 5) and all(type(v) is int for v in cfg.sizes)
    assert cfg.free == (1e9, -1e9)
    assert Cfg(sizes=(), free=()).sizes == ()  # no fixed length: empty is allowed


@pytest.mark.parametrize("bad, match", [
    (dict(weights=(0.0, 1.0)), "must have 3 elements"),
    (dict(weights=(0.0, 1.0, 1.0, 1.0)), "must have 3 elements"),
    (dict(weights=(0.0, 3.0, 1.0)), "element 1: 3.0 is outside the valid range -2.0 .. 2.0"),
    (dict(weights=(0.0, float("inf"), 1.0)), "element 1"),
    (dict(weights=(0.0, None, 1.0)), "element 1: must be a number"),
    (dict(weights=(0.0, True, 1.0)), "element 1: must be a number"),
    (dict(weights="abc"), "list of numbers"),
    (dict(weights=1.0), "list of numbers"),
    (dict(weights=np.zeros((3, 1))), "list of numbers"),
    (dict(sizes=(1, 2.5)), "element 1: must be an integer"),
    (dict(sizes=(0,)), "element 0: 0 is outside"),
    (dict(free=(float("nan"),)), "element 0"),
])
def test_tuple_fields_are_checked_per_element_and_by_length(bad, match):
    with pytest.raises(InputError, match=match) as err:
        Cfg(**bad)
    assert f"Cfg.{next(iter(bad))}" in str(err.value)


def test_tuple_choices_apply_to_each_element_and_length_needs_a_tuple_default():
    @dataclass
    class Picks:
        picks: tuple = param((1, 2), "picks", choices=(1, 2, 3))

        def __post_init__(self) -> None:
            validate_config(self)

    assert Picks(picks=[3, 3, 1]).picks == (3, 3, 1)  # not frozen: stored back as a tuple too
    with pytest.raises(InputError, match="element 1"):
        Picks(picks=(1, 4))
    with pytest.raises(TypeError, match="length"):
        param(1.0, "a scalar", length=2)


def test_text_field_without_choices_needs_text():
    @dataclass(frozen=True)
    class Named:
        name: str = param("a", "free text")

        def __post_init__(self) -> None:
            validate_config(self)

    assert Named("b").name == "b"
    with pytest.raises(InputError, match="must be text"):
        Named(3)
