"""`make demo` walks a phone through a whole visit: run the same walk-through on the test lab."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.lab.probe import everyone_out
from gateway.model.store import connect

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_the_demo_walks_a_phone_through_a_visit(lab):
    everyone_out(lab, connect(lab.config()))
    argv = [sys.executable, "-m", "gateway.lab.demo", "--prefix", lab.spec.prefix]
    result = subprocess.run(
        [*argv, "--clients", str(lab.spec.clients)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for seen in ("gave it 10.42.0.", "302 -> ", "-> 303 to", "from the internet (online)",
                 "guaranteed", "Mbit/s (iperf3)", '"event": "start"', "The lab stays up"):  # fmt: skip
        assert seen in out, f"{seen!r} missing from the demo's output:\n{out}"
    everyone_out(lab, connect(lab.config()))
