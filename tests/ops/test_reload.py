"""Reloading: a good file replaces the running config, a bad one is refused and the old one stays."""

from __future__ import annotations

from click.testing import CliRunner

from gateway.cli import cli
from gateway.daemon.reload import reload_config


def test_a_good_file_replaces_the_running_config(config, config_path):
    config_path.write_text(config_path.read_text().replace('duration = "2h"', 'duration = "3h"'))
    result = reload_config(config)
    assert result.ok and result.problems == [] and result.restart_needed == []
    assert result.changed == ["plans"]
    assert result.config.plans["harian"].duration == 3 * 3600


def test_a_bad_file_is_refused_and_the_old_config_stays(config, config_path):
    config_path.write_text(config_path.read_text().replace('down = "4mbit"', 'down = "4 megs"'))
    result = reload_config(config)
    assert not result.ok and result.config is config
    assert result.problems == [
        f'{config_path}: plans.harian.down: "4 megs" is not a rate; use e.g. "10mbit" or "512kbit"'
    ]
    assert result.reply()["ok"] is False


def test_keys_bound_at_start_wait_for_a_restart(config, config_path):
    text = config_path.read_text().replace('listen = "127.0.0.1:0"', 'listen = "127.0.0.1:9999"')
    config_path.write_text(text.replace('duration = "2h"', 'duration = "1h"'))
    result = reload_config(config)
    assert result.ok and result.restart_needed == ["metrics.listen"]
    assert result.config.metrics.listen == "127.0.0.1:0"  # still the bound one
    assert result.config.plans["harian"].duration == 3600  # the rest applies


def test_cli_refuses_a_bad_file_before_asking_the_gateway(config_path):
    config_path.write_text(config_path.read_text() + "\n[portla]\n")
    result = CliRunner().invoke(cli, ["--config", str(config_path), "reload"])
    assert result.exit_code == 2
    assert 'portla: unknown section; did you mean "portal"?' in result.output
    assert "running config stays in force" in result.output


def test_cli_says_when_no_gateway_answers(config_path):
    result = CliRunner().invoke(cli, ["--config", str(config_path), "reload", "--timeout", "0.2"])
    assert result.exit_code == 3 and "the gateway did not answer" in result.output
