"""Small pure parts of the portal: the neighbour table, DHCP option 114, gunicorn settings."""

from __future__ import annotations

from pathlib import Path

from gunicorn.workers.ggevent import GeventWorker

from gateway import config as config_mod
from gateway.ops.dnsmasq import render_dnsmasq_conf
from portal import neighbours
from portal.__main__ import (
    ACCESS_LOG_FORMAT,
    CloseWhenAsked,
    PortalWorker,
    TlsScheme,
    gunicorn_options,
    tls_configured,
)

ROOT = Path(__file__).resolve().parents[2]
ARP = """IP address       HW type     Flags       HW address            Mask     Device
10.42.0.100      0x1         0x2         02:00:00:00:01:01     *        lan0
10.42.0.101      0x1         0x0         00:00:00:00:00:00     *        lan0
10.42.0.102      0x1         0x2         02:00:00:00:01:03     *        wan0
10.42.0.103      0x1         0x6         02:00:00:00:01:04     *        lan0
garbage line
"""


def _config(**portal: str | int) -> config_mod.Config:
    text = (ROOT / "docs" / "hotspot.example.toml").read_text()
    for key, value in portal.items():
        if isinstance(value, int):
            text = text.replace(f"\n{key} = 1\n", f"\n{key} = {value}\n", 1)
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
    assert not tls_configured(plain) and gunicorn_options(plain)["bind"] == ["10.42.0.1:8080"]
    tls = _config(tls_cert="/etc/hotspot/portal.pem", tls_key="/etc/hotspot/portal.key")
    assert tls_configured(tls)
    # one server for both listeners (one master, its workers): TLS is the worker's, per listener
    options = gunicorn_options(tls)
    assert options["bind"] == ["10.42.0.1:8080", "10.42.0.1:8443"]
    assert "certfile" not in options and options["worker_class"] is PortalWorker
    assert options["sendfile"] is False, "sendfile would write past TLS"
    assert gunicorn_options(tls, listen="tls")["bind"] == ["10.42.0.1:8443"]
    assert gunicorn_options(tls, listen="http")["bind"] == ["10.42.0.1:8080"]
    assert options["workers"] == 1 and gunicorn_options(_config(workers=2))["workers"] == 2


def test_requests_on_the_tls_listener_are_https():
    seen = []

    def app(environ, start_response):
        seen.append(environ["wsgi.url_scheme"])
        return [b""]

    wrapped = TlsScheme(app, 8443)
    wrapped({"SERVER_PORT": "8443", "wsgi.url_scheme": "http"}, None)
    wrapped({"SERVER_PORT": "8080", "wsgi.url_scheme": "http"}, None)
    assert seen == ["https", "http"]


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
    assert issubclass(options["worker_class"], GeventWorker) and options["worker_connections"] >= 100
    assert options["keepalive"] <= 10, "a request's headers must arrive within the keepalive timeout"


def test_the_ruleset_puts_portal_answers_in_the_lan_class():
    from gateway.firewall.ruleset import template_text
    from gateway.shaping.model import LOCAL_CLASS

    major, minor = LOCAL_CLASS >> 16, LOCAL_CLASS & 0xFFFF
    assert f"meta priority set {major:x}:{minor:x}" in template_text()
