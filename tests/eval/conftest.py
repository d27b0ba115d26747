"""Shared fixtures of the eval tests."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "eval"


@pytest.fixture
def data() -> Path:
    """The folder of tiny committed eval fixtures."""
    return DATA
