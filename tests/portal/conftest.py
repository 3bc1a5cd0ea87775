"""flaskr-style fixtures: ``app`` and ``client`` on a real Redis (``redis_url``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config as config_mod

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hotspot_config(redis_url, tmp_path) -> config_mod.Config:
    """The example config, pointed at the test Redis and a temporary state folder."""
    text = (ROOT / "docs" / "hotspot.example.toml").read_text()
    text = text.replace('url = "redis://127.0.0.1:6379/0"', f'url = "{redis_url}"')
    text = text.replace('state_dir = "/var/lib/hotspot"', f'state_dir = "{tmp_path}/state"')
    text = text.replace('log_dir = "/var/log/hotspot"', f'log_dir = "{tmp_path}/log"')
    return config_mod.loads(text, tmp_path / "hotspot.toml")


@pytest.fixture
def app(hotspot_config, r):
    from portal import create_app

    return create_app({"HOTSPOT": hotspot_config, "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()
