"""The HQ alert rules and the fleet dashboard: promtool checks and unit-tests every alert; the
dashboard parses and names only series a router (or prometheus-node-exporter) serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "monitoring"
RULES = DOCS / "hotspot-alerts.yml"
RULE_TESTS = DOCS / "hotspot-alerts.test.yml"
DASHBOARD = DOCS / "grafana-fleet.json"

# prometheus-node-exporter 1.5 (Debian 12) series the rules and the dashboard use;
# tests/monitoring/test_prometheus_lab.py checks them against the real exporter
NODE_SERIES = {
    "node_load5", "node_memory_MemAvailable_bytes", "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes", "node_timex_offset_seconds", "node_timex_sync_status",
    "node_boot_time_seconds",
}  # fmt: skip
PROMETHEUS_OWN = {"up", "ALERTS"}
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (apt-get install prometheus)")


def alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


@needs_promtool
def test_promtool_check_rules():
    result = subprocess.run([PROMTOOL, "check", "rules", RULES], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


@needs_promtool
def test_promtool_unit_tests_pass():
    result = subprocess.run([PROMTOOL, "test", "rules", RULE_TESTS], capture_output=True, text=True, cwd=DOCS)
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_has_a_runbook():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"] for test in tests for case in test["alert_rule_test"] if case.get("exp_alerts")
    }
    runbook = (ROOT / "docs" / "fleet-ops.md").read_text()
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', runbook))
    for rule in alerts():
        name = rule["alert"]
        assert name in fired, f"{name}: no promtool test where it fires"
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor in anchors, f"{name}: docs/fleet-ops.md has no runbook section #{anchor}"


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exprs += [var["definition"] for var in dashboard["templating"]["list"] if var.get("definition")]
    return exprs


def metric_names(expr: str) -> set[str]:
    """Return the series names in a PromQL expression (not functions, labels or keywords)."""
    expr = re.sub(r"label_values\((.*),\s*\w+\)", r"label_values(\1)", expr)  # Grafana: (series, label)
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "{}", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[match.end() :].lstrip()
        if rest.startswith("("):
            continue  # a function or aggregation
        if match.group(0) in ("and", "or", "unless", "bool", "offset", "inf", "nan"):
            continue
        names.add(match.group(0))
    return names


def test_fleet_dashboard_parses_and_names_only_served_series(redis_url):
    from prometheus_client import generate_latest

    from gateway.daemon.metrics import GatewayMetrics
    from gateway.model.store import connect
    from tests.ops.test_metrics import PENDING_SERIES, served_config

    metrics = GatewayMetrics(lambda: connect(redis_url))
    metrics.set_config(served_config())
    metrics.observe_pass(0.01, drift={"nft": 1})
    metrics.set_shaping_drops("down", 1)
    text = generate_latest(metrics.registry).decode()
    served = set(re.findall(r"^(hotspot_\w+?)(?:_bucket|_count|_sum)?(?:\{| )", text, re.M))
    served |= set(re.findall(r"^(hotspot_\w+)", text, re.M))
    # hs:counters-fed series (logins, clients) appear once Redis holds them; the Redis-fed test covers them
    served |= {"hotspot_logins_total", "hotspot_clients_online", "hotspot_client_bytes_total"}
    known = served | PENDING_SERIES | NODE_SERIES | PROMETHEUS_OWN
    used = set().union(*(metric_names(e) for e in dashboard_exprs()))
    assert {"up", "hotspot_clients_online", "node_load5"} <= used
    assert used <= known, used - known
    rules_used = set().union(*(metric_names(rule["expr"]) for rule in alerts()))
    assert rules_used <= known, rules_used - known


@needs_promtool
def test_promtool_check_config_of_the_hq_example():
    result = subprocess.run(
        [PROMTOOL, "check", "config", DOCS / "prometheus.yml"], capture_output=True, text=True, cwd=DOCS
    )
    assert result.returncode == 0, result.stdout + result.stderr
