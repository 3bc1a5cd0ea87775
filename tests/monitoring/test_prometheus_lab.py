"""HQ monitoring for real: Debian's prometheus, prometheus-alertmanager and
prometheus-node-exporter scrape a lab router, and Alertmanager gets "router down".

Prometheus and Alertmanager run in the lab's upstream namespace (``<prefix>up``, standing in
for HQ; it reaches the router's WAN address) bound to its lab address only; the node exporter
runs in the router's namespace on its WAN address. The gateway serves /metrics on the WAN
address for the test (``metrics.listen``), as a router does on its VPN address. Configs go to
a temporary folder, every process is stopped by its PID and the lab config is put back.
The rules are the shipped ones with ``for:`` set to 0s and a 1 s scrape, so the test waits
seconds, not the real 5 minutes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import pytest
import yaml

from gateway.lab.probe import admit, wait_for
from gateway.lab.topology import UPSTREAM_IP, WAN_ROUTER
from tests.monitoring.test_rules import NODE_SERIES, RULES

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(
            shutil.which(t) for t in ("prometheus", "prometheus-alertmanager", "prometheus-node-exporter")
        ),
        reason="prometheus, prometheus-alertmanager or prometheus-node-exporter missing (apt-get them)",
    ),
]

METRICS_PORT = 9110
NODE_PORT = 9100
PROM = f"http://{UPSTREAM_IP}:9090"
ALERTMANAGER = f"http://{UPSTREAM_IP}:9093"
MAC = re.compile(r"\b[0-9a-fA-F]{2}([:-])(?:[0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}\b")


def http_get(lab, ns: str, url: str) -> str:
    """GET ``url`` from inside the lab namespace ``ns``; return the body ("" if it fails)."""
    result = subprocess.run(
        ["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "3", url], capture_output=True, text=True
    )  # fmt: skip
    return result.stdout if result.returncode == 0 else ""


def wait_until(check, timeout: float, what: str):
    """:func:`gateway.lab.probe.wait_for`, asking every half second (Prometheus answers over curl)."""
    return wait_for(check, timeout, what, every=0.5)


@pytest.fixture(scope="module")
def hq(lab, tmp_path_factory):
    """Serve the lab router's metrics on its WAN address; run node exporter, Prometheus, Alertmanager."""
    work = tmp_path_factory.mktemp("hq")
    original = lab.config_path.read_text()
    listen = f'listen = "{WAN_ROUTER}:{METRICS_PORT}"'
    lab.config_path.write_text(re.sub(r'(?m)^listen = "127\.0\.0\.1:\d+"$', listen, original))
    assert listen in lab.config_path.read_text()
    library = lab.config().library.id
    procs: list[subprocess.Popen] = []
    logs: list = []

    def spawn(ns: str, argv: list[str], name: str) -> None:
        log = (work / f"{name}.log").open("w")
        logs.append(log)
        argv = ["ip", "netns", "exec", ns, *argv]
        procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))

    try:
        lab.restart("gateway")
        rules = yaml.safe_load(RULES.read_text())
        for group in rules["groups"]:
            group["interval"] = "1s"
            for rule in group["rules"]:
                rule["for"] = "0s"  # the test copy only; the shipped rules keep theirs
        (work / "rules.yml").write_text(yaml.safe_dump(rules))
        (work / "alertmanager.yml").write_text(
            yaml.safe_dump(
                {
                    "route": {"receiver": "hq", "group_wait": "1s", "group_interval": "1s"},
                    "receivers": [{"name": "hq"}],
                }
            )  # fmt: skip
        )
        (work / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": "1s",
                        "evaluation_interval": "1s",
                        "scrape_timeout": "900ms",
                    },
                    "rule_files": [str(work / "rules.yml")],
                    "alerting": {
                        "alertmanagers": [{"static_configs": [{"targets": [f"{UPSTREAM_IP}:9093"]}]}]
                    },
                    "scrape_configs": [
                        {
                            "job_name": "hotspot",
                            "static_configs": [
                                {
                                    "targets": [f"{WAN_ROUTER}:{METRICS_PORT}"],
                                    "labels": {"library": library, "province": "lab"},
                                }
                            ],
                        },
                        {
                            "job_name": "node",
                            "static_configs": [
                                {
                                    "targets": [f"{WAN_ROUTER}:{NODE_PORT}"],
                                    "labels": {"library": library, "province": "lab"},
                                }
                            ],
                        },
                    ],
                }
            )  # fmt: skip
        )
        node = ["prometheus-node-exporter", f"--web.listen-address={WAN_ROUTER}:{NODE_PORT}"]
        spawn(lab.spec.gw, node, "node")
        spawn(lab.spec.up, ["prometheus-alertmanager", f"--config.file={work / 'alertmanager.yml'}",
                            f"--storage.path={work / 'am'}", f"--web.listen-address={UPSTREAM_IP}:9093",
                            "--cluster.listen-address="], "alertmanager")  # fmt: skip
        spawn(lab.spec.up, ["prometheus", f"--config.file={work / 'prometheus.yml'}",
                            f"--storage.tsdb.path={work / 'data'}",
                            f"--web.listen-address={UPSTREAM_IP}:9090"], "prometheus")  # fmt: skip
        wait_until(lambda: http_get(lab, lab.spec.up, f"{PROM}/-/ready"), 60, "Prometheus ready")
        wait_until(lambda: http_get(lab, lab.spec.up, f"{ALERTMANAGER}/-/ready"), 60, "Alertmanager ready")
        yield {"library": library, "work": work}
    finally:
        for proc in procs:  # ours only, by PID
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for log in logs:
            log.close()
        lab.config_path.write_text(original)
        if not lab.is_running("gateway"):
            lab.start("gateway")
        else:
            lab.restart("gateway")


def query(lab, promql: str) -> list[dict]:
    body = http_get(lab, lab.spec.up, f"{PROM}/api/v1/query?query={_quote(promql)}")
    return json.loads(body)["data"]["result"] if body else []


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def test_metrics_hold_no_mac_with_phones_online(lab, gw, hq):
    """What HQ scrapes from a router with phones online names no device: no MAC anywhere."""
    for i in (1, 2, 3):
        _session, ack = admit(gw, lab, i)
        assert ack and ack["ok"], ack
    body = wait_until(
        lambda: (
            (b := http_get(lab, lab.spec.up, f"http://{WAN_ROUTER}:{METRICS_PORT}/metrics"))
            and re.search(r"(?m)^hotspot_clients_online\{[^}]*\} 3\.0$", b)
            and b
        ),
        15,
        "3 phones online in /metrics",
    )
    macs = [lab.client_mac(i) for i in (1, 2, 3)]
    assert not MAC.search(body), MAC.search(body).group(0)
    assert not any(mac.lower() in body.lower() for mac in macs)
    ips = [lab.client_ip(lab.spec.client(i)) for i in (1, 2, 3)]
    assert not any(ip and f'"{ip}"' in body for ip in ips), "no client address in a label either"
    # and what Prometheus stored from it: no label value anywhere looks like a MAC
    wait_until(lambda: query(lab, "sum(hotspot_clients_online) == 3"), 30, "Prometheus seeing 3 phones")
    url = f"{PROM}/api/v1/series?match[]=" + _quote('{job="hotspot"}')
    series = json.loads(http_get(lab, lab.spec.up, url))
    values = [v for s in series["data"] for v in s.values()]
    assert values and not [v for v in values if MAC.search(v)]


def test_prometheus_scrapes_the_router_and_alertmanager_gets_router_down(lab, gw, hq):
    library = hq["library"]
    wait_until(
        lambda: [r for r in query(lab, 'up{job="hotspot"} == 1') if r["metric"]["library"] == library],
        30,
        "Prometheus scraping the router's gateway",
    )
    assert query(lab, "hotspot_gateway_info"), "the gateway's own series are stored"
    wait_until(lambda: query(lab, 'up{job="node"} == 1'), 30, "Prometheus scraping the node exporter")
    for name in sorted(NODE_SERIES):  # the names the dashboard and the rules rely on exist for real
        assert wait_until(lambda name=name: query(lab, name), 10, f"{name} from the node exporter")

    def router_down_alerts() -> list[dict]:
        body = http_get(lab, lab.spec.up, f"{ALERTMANAGER}/api/v2/alerts?active=true")
        alerts = json.loads(body) if body else []
        return [a for a in alerts if a["labels"].get("alertname") == "HotspotRouterDown"]

    assert not router_down_alerts(), "no alert while the router answers"
    stopped_at = time.monotonic()
    assert lab.stop("gateway")
    alerts = wait_until(router_down_alerts, 60, "Alertmanager receiving HotspotRouterDown")
    took = time.monotonic() - stopped_at
    labels = alerts[0]["labels"]
    assert labels["library"] == library and labels["severity"] == "critical", labels
    assert alerts[0]["annotations"]["runbook"] == "docs/fleet-ops.md#router-down"
    print(f"router down -> Alertmanager: {took:.1f}s (1 s scrape, for: 0s)")
    lab.start("gateway")
