"""A config file for the ops tests: the test Redis, logs in a temporary folder."""

from __future__ import annotations

import pytest

CONFIG = """
[library]
id = "sukabumi"
name = "Perpustakaan Daerah Sukabumi"
timezone = "Asia/Jakarta"

[network]
lan_interface = "lan0"
wan_interface = "wan0"
lan_address = "10.42.0.1/24"

[uplink]
down = "10mbit"
up = "10mbit"

[redis]
url = "{redis_url}"

[paths]
state_dir = "{tmp}/state"
log_dir = "{tmp}/log"

[metrics]
listen = "127.0.0.1:0"

[plans.harian]
duration = "2h"
down = "4mbit"
up = "2mbit"
"""


@pytest.fixture
def config_path(tmp_path, redis_url, r):
    """Write a valid config for the test Redis (flushed) and return its path."""
    path = tmp_path / "hotspot.toml"
    path.write_text(CONFIG.format(redis_url=redis_url, tmp=tmp_path))
    return path


@pytest.fixture
def config(config_path):
    from gateway import config as config_mod

    return config_mod.load(config_path)
