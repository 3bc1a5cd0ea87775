"""Fixtures of the deploy lab tests: the lab's Redis with nobody online before and after."""

from __future__ import annotations

import pytest

from gateway.lab.probe import everyone_out
from gateway.model.store import connect


@pytest.fixture
def gw(lab):
    """Redis of the running lab, with nobody online before and after the test."""
    r = connect(lab.config())
    everyone_out(lab, r)
    yield r
    everyone_out(lab, r)
