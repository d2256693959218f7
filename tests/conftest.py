"""Shared fixtures. Real data comes from $PERCEPTION_DATA (CI: ../shared/data); tests skip without it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real data folder, or skip with the reason."""
    value = os.environ.get("PERCEPTION_DATA")
    if not value:
        pytest.skip("PERCEPTION_DATA is not set (CI sets it to ../shared/data)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"PERCEPTION_DATA={value} is not a folder")
    return path
