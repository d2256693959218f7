"""Shared synthetic worlds: building one takes about a second, rendering a small frame a few tens of ms."""
from __future__ import annotations

import pytest

from perception.sim import SimConfig, SimWorld


@pytest.fixture(scope="session")
def small_world() -> SimWorld:
    return SimWorld(SimConfig(seed=3, width=160, height=120, frames=40, change_frame=20))


@pytest.fixture(scope="session")
def stereo_world() -> SimWorld:
    return SimWorld(SimConfig(seed=1, width=320, height=240, frames=20, noise_sigma=1.0))


@pytest.fixture(scope="session")
def small_frame(small_world):
    return small_world.render(5)
