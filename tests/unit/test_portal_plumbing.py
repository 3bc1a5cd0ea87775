"""Small pure parts of the portal: the neighbour table, DHCP option 114, gunicorn settings."""

from __future__ import annotations

from pathlib import Path

from gateway import config as config_mod
from gateway.ops.dnsmasq import render_dnsmasq_conf
from portal import neighbours
from portal.__main__ import ACCESS_LOG_FORMAT, CloseWhenAsked, gunicorn_options, tls_configured

ROOT = Path(__file__).resolve().parents[2]
ARP = """IP address       HW type     Flags       HW address            Mask     Device
10.42.0.100      0x1         0x2         02:00:00:00:01:01     *        lan0
10.42.0.101      0x1         0x0         00:00:00:00:00:00     *        lan0
10.42.0.102      0x1         0x2         02:00:00:00:01:03     *        wan0
10.42.0.103      0x1         0x6         02:00:00:00:01:04     *        lan0
garbage line
"""


def _config(**portal: str) -> config_mod.Config:
    text = (ROOT / "docs" / "hotspot.example.toml").read_text()
    for key, value in portal.items():
        text = text.replace(f'{key} = ""', f'{key} = "{value}"', 1)
    return config_mod.loads(text, "/etc/hotspot/hotspot.toml")


def test_arp_table_parsing_keeps_complete_lan_entries(tmp_path):
    table = neighbours.parse_arp_table(ARP)
    assert table == {
        ("10.42.0.100", "lan0"): "02:00:00:00:01:01",
        ("10.42.0.102", "wan0"): "02:00:00:00:01:03",
        ("10.42.0.103", "lan0"): "02:00:00:00:01:04",
    }
    arp = tmp_path / "arp"
    arp.write_text(ARP)
    assert neighbours.mac_for_ip("10.42.0.100", "lan0", arp_table=arp) == "02:00:00:00:01:01"
    assert neighbours.mac_for_ip("::ffff:10.42.0.100", "lan0", arp_table=arp) == "02:00:00:00:01:01"
    assert neighbours.mac_for_ip("10.42.0.101", "lan0", arp_table=arp) is None, "incomplete"
    assert neighbours.mac_for_ip("10.42.0.102", "lan0", arp_table=arp) is None, "not on the LAN"
    assert neighbours.mac_for_ip("not an ip", "lan0", arp_table=arp) is None
    assert neighbours.mac_for_ip("10.42.0.100", "lan0", arp_table=tmp_path / "missing") is None


def test_dnsmasq_announces_the_captive_portal_api():
    conf = render_dnsmasq_conf(_config(), lease_file=Path("/var/lib/misc/leases"))
    assert 'dhcp-option=114,"http://10.42.0.1:8080/api/captive"' in conf.splitlines()


def test_dnsmasq_answers_the_portals_short_name():
    conf = render_dnsmasq_conf(_config(), lease_file=Path("leases"))
    assert "host-record=wifi.perpus,10.42.0.1" in conf.splitlines()
    text = (ROOT / "docs" / "hotspot.example.toml").read_text()
    text = text.replace('local_name = "wifi.perpus"', 'local_name = ""')
    off = config_mod.loads(text, "/etc/hotspot/hotspot.toml")
    assert "host-record" not in render_dnsmasq_conf(off, lease_file=Path("leases"))


def test_access_log_never_has_query_strings():
    options = gunicorn_options(_config())
    assert options["access_log_format"] == ACCESS_LOG_FORMAT
    assert "%(r)s" not in ACCESS_LOG_FORMAT and "%(q)s" not in ACCESS_LOG_FORMAT
    assert "%(f)s" not in ACCESS_LOG_FORMAT, "nor the Referer (it could carry one)"


def test_tls_listener_only_with_a_certificate():
    plain = _config()
    assert not tls_configured(plain) and "certfile" not in gunicorn_options(plain)
    tls = _config(tls_cert="/etc/hotspot/portal.pem", tls_key="/etc/hotspot/portal.key")
    assert tls_configured(tls)
    options = gunicorn_options(tls, tls=True)
    assert options["bind"] == ["10.42.0.1:8443"]
    assert (
        options["certfile"] == "/etc/hotspot/portal.pem" and options["keyfile"] == "/etc/hotspot/portal.key"
    )
    assert gunicorn_options(tls)["bind"] == ["10.42.0.1:8080"]


def test_connection_close_is_passed_to_gunicorn():
    class Response:  # the shape of gunicorn's Response: start_response is its bound method
        closed = False

        def start_response(self, status, headers, exc_info=None):
            return None

        def force_close(self):
            self.closed = True

    def app(environ, start_response):
        start_response("302 Found", [("Connection", "close")] if environ["close"] else [])
        return [b""]

    for close in (True, False):
        response = Response()
        CloseWhenAsked(app)({"close": close}, response.start_response)
        assert response.closed is close
    CloseWhenAsked(app)({"close": True}, lambda *a: None)  # any other server: nothing to do


def test_workers_do_not_block_on_slow_clients():
    # issue 16: 16 trickling connections held every gthread thread; gevent holds a greenlet each
    options = gunicorn_options(_config())
    assert options["worker_class"] == "gevent" and options["worker_connections"] >= 100
    assert options["keepalive"] <= 10, "a request's headers must arrive within the keepalive timeout"


def test_the_ruleset_puts_portal_answers_in_the_lan_class():
    from gateway.firewall.ruleset import template_text
    from gateway.shaping.model import LOCAL_CLASS

    major, minor = LOCAL_CLASS >> 16, LOCAL_CLASS & 0xFFFF
    assert f"meta priority set {major:x}:{minor:x}" in template_text()
