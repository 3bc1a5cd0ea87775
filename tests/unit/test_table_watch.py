"""The table watch's filter: element events never reach the daemon, structural ones all do."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from gateway.firewall.monitor import ELEMENT_EVENT, is_structural

# lines as `nft -j monitor` prints them (nftables 1.0.6)
ELEMENTS = [
    '{"add": {"element": {"family": "inet", "table": "hotspot", "name": "auth4", "elem": {"set": []}}}}',
    '{"delete": {"element": {"family": "inet", "table": "hotspot", "name": "down4", "elem": {"set": []}}}}',
]
STRUCTURAL = [
    '{"delete": {"table": {"family": "inet", "name": "hotspot", "handle": 1}}}',
    '{"add": {"chain": {"family": "inet", "table": "hotspot", "name": "from_lan", "handle": 2}}}',
    '{"delete": {"rule": {"family": "inet", "table": "hotspot", "chain": "from_lan", "handle": 3}}}',
    '{"add": {"set": {"family": "inet", "name": "auth4", "table": "hotspot", "type": "ipv4_addr"}}}',
]


@pytest.mark.skipif(shutil.which("grep") is None, reason="grep is part of every Debian system")
def test_grep_drops_the_element_events_only():
    text = "\n".join(ELEMENTS + STRUCTURAL + ELEMENTS) + "\n"
    kept = subprocess.run(["grep", "--line-buffered", "-v", "-E", ELEMENT_EVENT], input=text,
                          capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
    assert kept == STRUCTURAL
    assert all(is_structural(line) for line in kept)
    assert not any(is_structural(line) for line in ELEMENTS)
