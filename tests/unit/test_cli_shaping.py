"""``hotspotctl limit`` and ``hotspotctl top`` against a real Redis (no gateway running)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.lab.topology import lab_config_text
from gateway.model import keys
from gateway.model.sessions import get_session, new_session, start_session
from gateway.shaping import rates

NOW = 1_700_000_000.0


@pytest.fixture
def config_file(tmp_path, redis_url):
    text = lab_config_text(tmp_path)
    text = text.replace(f'url = "unix://{tmp_path}/redis.sock"', f'url = "{redis_url}"')
    text = text.replace("[gateway]\n", "[gateway]\nack_timeout = 0.2\n")
    path = tmp_path / "hotspot.toml"
    path.write_text(text)
    return path


@pytest.fixture
def invoke(config_file, monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)  # top: no kernel counters, Redis's rates
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at 80 columns otherwise

    def run(*args: str):
        return CliRunner().invoke(cli, ["--config", str(config_file), *args])

    return run


def _online(r, n=1, **kw):
    s = new_session(
        mac=f"02:00:00:00:01:{n:02x}", ip=f"10.42.0.{99 + n}", kind="voucher", plan="harian", now=NOW,
        expires_at=NOW + 7200, down=4_000_000, up=2_000_000, **kw,
    )  # fmt: skip
    return start_session(r, s, NOW)


def test_limit_by_mac_and_reset_by_ip(invoke, r):
    s = _online(r)
    result = invoke("limit", "02-00-00-00-01-01", "1mbit/512kbit")
    # saved, but no gateway answered: says so, exit 3
    assert result.exit_code == 3, result.output
    assert "saved 1 Mbit/s down / 512 kbit/s up" in result.output
    assert (get_session(r, s.sid).down, get_session(r, s.sid).up) == (1_000_000, 512_000)
    assert r.xlen(keys.COMMANDS) == 1
    result = invoke("limit", "10.42.0.100", "--reset")
    assert result.exit_code == 3, result.output
    assert (get_session(r, s.sid).down, get_session(r, s.sid).up) == (4_000_000, 2_000_000)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["02:00:00:00:01:09", "1mbit"], "02:00:00:00:01:09: no client online"),
        (["phone", "1mbit"], "neither a MAC"),
        (["02:00:00:00:01:01", "1 megabit"], "is not a rate"),
        (["02:00:00:00:01:01"], "give RATES"),
        (["02:00:00:00:01:01", "1mbit", "--reset"], "give RATES"),
    ],
)
def test_limit_bad_input(invoke, r, args, message):
    _online(r)
    result = invoke("limit", *args)
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert "Traceback" not in result.output


def test_top_once_from_the_gateways_rates(invoke, r):
    busy = _online(r, 1, quota=200_000_000)
    idle = _online(r, 2)
    r.hset(keys.session(busy.sid), mapping={rates.RATE_DOWN: 3_000_000, rates.RATE_UP: 100_000,
                                            "bytes_down": 5_000_000})  # fmt: skip
    result = invoke("top", "--json", "--interval", "0.2")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["mac"] for row in rows] == [busy.mac, idle.mac]
    assert rows[0]["rate_down"] == 3_000_000 and rows[1]["rate_down"] is None
    result = invoke("top", "--once", "--interval", "0.2")
    assert result.exit_code == 0, result.output
    assert "2 online" in result.output and "3 Mbit/s / 4 Mbit/s" in result.output
    assert "195 MB" in result.output  # quota left
