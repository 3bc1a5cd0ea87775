"""Current rates from two samples of the class counters; stored without resurrecting."""

from __future__ import annotations

import pytest

from gateway.model import keys
from gateway.shaping.rates import Sample, rates, read_rates, worth_writing, write_rates

T = 1_700_000_000.0


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [
        (Sample("a", 1000, 500, T), Sample("a", 3000, 1500, T + 2), {"a": (8000.0, 4000.0)}),
        (Sample("a", 1000, 500, T), Sample("a", 1000, 500, T + 2), {"a": (0.0, 0.0)}),
        (Sample("a", 1000, 500, T), Sample("b", 3000, 1500, T + 2), {}),  # the slot changed hands
        (Sample("a", 1000, 500, T), Sample("a", 10, 5, T + 2), {}),  # class created again
        (Sample("a", 1000, 500, T), Sample("a", 3000, 1500, T + 0.1), {}),  # too soon
        (None, Sample("a", 3000, 1500, T + 2), {}),  # first sample
    ],
)
def test_rates(before, now, expected):
    assert rates({1: before} if before else {}, {1: now}) == expected


def test_rates_round_trip_without_resurrecting(r):
    r.hset(keys.session("a"), mapping={"sid": "a", "state": "online"})
    write_rates(r, {"a": (8000.4, 4000.0), "gone": (1.0, 1.0)}, T)
    assert read_rates(r, ["a", "gone"]) == {"a": (8000.0, 4000.0, T)}
    assert not r.exists(keys.session("gone"))


def test_only_rates_that_moved_are_written_again():
    written = {"steady": (4e6, 1e5, T), "idle": (0.0, 0.0, T), "old": (1e6, 0.0, T - 120)}
    found = {"steady": (4.1e6, 1e5), "idle": (0.0, 0.0), "old": (1e6, 0.0), "busy": (2e6, 0.0),
             "woke": (0.0, 0.0)}  # fmt: skip
    written["woke"] = (3e6, 0.0, T)
    assert set(worth_writing(found, written, T + 2)) == {"old", "busy", "woke"}
