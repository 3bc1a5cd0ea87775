"""DHCP host names from dnsmasq's lease file: parsed, cleaned (a visitor chooses the text), cached."""

from __future__ import annotations

import os

from gateway.model.leases import HostNames, parse_leases

LEASES = """1800007200 02:00:00:00:01:01 10.42.0.101 Galaxy-A14 01:02:00:00:00:01:01
1800007200 02:00:00:00:01:02 10.42.0.102 * *
1800007200 02:00:00:00:01:03 10.42.0.103 <script>alert(1)</script> *
duid 00:01:00:01:2c:9a:3b:4c:02:00:00:00:00:01
1800007200 not-a-mac 10.42.0.104 ghost *
garbage
"""


def test_parse_keeps_named_ipv4_leases_and_cleans_names():
    assert parse_leases(LEASES) == {
        "02:00:00:00:01:01": "Galaxy-A14",
        "02:00:00:00:01:03": "scriptalert1script",
    }


def test_names_follow_the_file(tmp_path):
    path = tmp_path / "dnsmasq.leases"
    names = HostNames(path)
    assert names.get() == {}, "no file yet: no names, no error"
    path.write_text(LEASES)
    assert names.get()["02:00:00:00:01:01"] == "Galaxy-A14"
    path.write_text("1800007200 02:00:00:00:01:01 10.42.0.101 iPhone-Siti *\n")
    os.utime(path, (1, 2))  # a new stamp even within the same second
    assert names.get() == {"02:00:00:00:01:01": "iPhone-Siti"}
