"""The lab's measuring helpers: iperf3 report parsing, Jain's index, percentiles."""

from __future__ import annotations

import math

import pytest

from gateway.lab.measure import _goodput, jain, percentile


def _client_report(rates):
    return {
        "intervals": [{"sum": {"start": i, "end": i + 1, "bits_per_second": r}} for i, r in enumerate(rates)]
    }


SERVER_LOG = """\
Accepted connection from 192.0.2.2, port 47032
[ ID] Interval           Transfer     Bitrate
[  5]   0.00-1.00   sec   150 KBytes  1.23 Mbits/sec
[  5]   1.00-2.00   sec  82.0 KBytes   672 Kbits/sec
[  5]   2.00-3.00   sec   125 KBytes  1.00 Mbits/sec
[  5]   3.00-4.00   sec   125 KBytes  1.10 Mbits/sec
[  5]   4.00-4.72   sec  50.9 KBytes   578 Kbits/sec
- - - - - - - - - - - - - - - - - - - - - - - - -
[  5]   0.00-4.72   sec   676 KBytes   968 Kbits/sec                  receiver
"""


def test_download_goodput_is_the_phones_view_after_the_omitted_start():
    report = _client_report([9e6, 5e6, 2e6, 2.2e6, 1.8e6, 2e6])
    assert _goodput(report, download=True, seconds=4, omit=2) == pytest.approx(2e6)


def test_upload_goodput_is_the_upstreams_view_without_the_drain():
    report = {"server_output_text": SERVER_LOG}
    assert _goodput(report, download=False, seconds=2, omit=2) == pytest.approx(1.05e6)


def test_goodput_errors():
    with pytest.raises(RuntimeError, match="busy"):
        _goodput({"error": "the server is busy"}, download=True, seconds=8, omit=2)
    with pytest.raises(RuntimeError, match="measured only"):
        _goodput(_client_report([1e6, 1e6, 1e6]), download=True, seconds=8, omit=2)


def test_jain_and_percentile():
    assert jain([2.0, 2.0, 2.0, 2.0]) == pytest.approx(1.0)
    assert jain([8.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert jain([]) == 0.0
    assert percentile([5, 1, 4, 2, 3], 50) == 3
    assert percentile(list(range(1, 101)), 95) == 95
    assert math.isnan(percentile([], 95))
