"""dnsmasq's long leases for devices that logged in: one dhcp-hostsdir file per online MAC."""

from __future__ import annotations

import ipaddress
import os
import time
from dataclasses import replace

from gateway import config as config_mod
from gateway.daemon.dhcp_hosts import DhcpHosts, host_line
from gateway.model.sessions import new_session
from gateway.ops.dnsmasq import render_dnsmasq_conf

NOW = time.time()  # file times are real: the clock must be too
CONFIG = """
[library]
id = "k"
name = "Test"
[network]
lan_interface = "lan0"
wan_interface = "wan0"
lan_address = "10.42.0.1/24"
[uplink]
down = "10mbit"
up = "10mbit"
"""


def session(i):
    return new_session(mac=f"02:00:00:00:03:{i:02x}", ip=f"10.42.0.{100 + i}", kind="admin", plan="",
                       now=NOW, expires_at=NOW + 3600, down=1, up=1)  # fmt: skip


def component(tmp_path):
    config = config_mod.loads(CONFIG, "hotspot.toml")
    return DhcpHosts(replace(config, dhcp=replace(config.dhcp, hosts_dir=tmp_path)))


def test_defaults_and_the_dnsmasq_line(tmp_path):
    config = config_mod.loads(CONFIG, "hotspot.toml")
    assert (config.dhcp.lease_time, config.dhcp.online_lease_time) == (600, 7200)
    assert host_line("02:00:00:00:03:AA", 7200) == "02:00:00:00:03:aa,120m\n"
    conf = render_dnsmasq_conf(config, lease_file=tmp_path / "leases")
    assert "dhcp-hostsdir=/var/lib/hotspot-dhcp" in conf and ",600\n" in conf
    off = config_mod.loads(CONFIG + '[dhcp]\nhosts_dir = ""\n', "hotspot.toml")
    assert off.dhcp.hosts_dir is None and "dhcp-hostsdir" not in render_dnsmasq_conf(off, lease_file=tmp_path)


def test_online_macs_get_a_file_once_and_stale_ones_go(tmp_path):
    hosts = component(tmp_path)
    online = [session(1), session(2)]
    assert hosts.reconcile(online, NOW) == {"added": 2, "removed": 0, "unchanged": 0}
    assert hosts.reconcile(online, NOW + 1) == {"added": 0, "removed": 0, "unchanged": 2}
    path = tmp_path / "02-00-00-00-03-01"
    assert path.read_text() == "02:00:00:00:03:01,120m\n" and oct(path.stat().st_mode)[-3:] == "644"
    # logged out: dnsmasq keeps the entry until it restarts anyway; the file goes when stale
    hosts.logout(online[0], NOW + 2)
    assert hosts.reconcile(online[1:], NOW + 2)["removed"] == 0
    os.utime(path, (NOW - 7300, NOW - 7300))
    assert hosts.reconcile(online[1:], NOW + 3) == {"added": 0, "removed": 1, "unchanged": 1}
    assert not path.exists()
    hosts.login(online[0], NOW + 4)
    assert path.exists() and not list(tmp_path.glob(".*"))


def test_without_the_folder_it_does_nothing(tmp_path):
    hosts = component(tmp_path / "missing")
    assert hosts.reconcile([session(1)], NOW) == {}
    hosts.login(session(1), NOW)
    assert not (tmp_path / "missing").exists()


def test_a_reserved_device_keeps_its_fixed_address_in_its_online_file(tmp_path):
    # dnsmasq reads dhcp-hostsdir files before its own dhcp-host lines: a file without the
    # address would shadow the reservation (the desk PC lost its desk.networks address)
    text = CONFIG + '[[dhcp.reservations]]\nmac = "02-00-00-00-03-0A"\nip = "10.42.0.10"\n'
    config = config_mod.loads(text, "hotspot.toml")
    assert config.dhcp.reservations == (("02:00:00:00:03:0a", ipaddress.IPv4Address("10.42.0.10")),)
    assert "dhcp-host=02:00:00:00:03:0a,10.42.0.10\n" in render_dnsmasq_conf(config, lease_file=tmp_path)
    hosts = DhcpHosts(replace(config, dhcp=replace(config.dhcp, hosts_dir=tmp_path)))
    desk, other = session(10), session(11)
    hosts.reconcile([desk, other], NOW)
    assert (tmp_path / "02-00-00-00-03-0a").read_text() == "02:00:00:00:03:0a,10.42.0.10,120m\n"
    assert (tmp_path / "02-00-00-00-03-0b").read_text() == "02:00:00:00:03:0b,120m\n"
    # a file written before the reservation was configured is rewritten on the next login
    (tmp_path / "02-00-00-00-03-0a").write_text("02:00:00:00:03:0a,120m\n")
    hosts.login(desk, NOW)
    assert (tmp_path / "02-00-00-00-03-0a").read_text() == "02:00:00:00:03:0a,10.42.0.10,120m\n"
    # a reload that drops the reservation (or changes the lease) rewrites the files it changes
    hosts.configure(replace(config, dhcp=replace(config.dhcp, hosts_dir=tmp_path, reservations=(),
                                                 online_lease_time=3600)))  # fmt: skip
    assert (tmp_path / "02-00-00-00-03-0a").read_text() == "02:00:00:00:03:0a,60m\n"
    assert (tmp_path / "02-00-00-00-03-0b").read_text() == "02:00:00:00:03:0b,60m\n"
