"""hotspotctl finds its config in --config, $HOTSPOT_CONFIG or /etc/hotspot/hotspot.toml, nowhere else."""

from __future__ import annotations

from click.testing import CliRunner

from gateway import config as config_mod
from gateway.cli import cli


def test_a_missing_default_config_is_exit_2_not_a_lab_fallback(tmp_path, monkeypatch):
    monkeypatch.delenv("HOTSPOT_CONFIG", raising=False)
    monkeypatch.setattr(config_mod, "DEFAULT_PATH", tmp_path / "etc/hotspot/hotspot.toml")
    result = CliRunner().invoke(cli, ["clients"])
    assert result.exit_code == 2, result.output
    assert f"no config at {tmp_path}/etc/hotspot/hotspot.toml (make install writes one)" in result.output
    assert "using the lab" not in result.output


def test_a_missing_config_named_by_the_environment_is_exit_2(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSPOT_CONFIG", str(tmp_path / "nope.toml"))
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path}/nope.toml: file not found" in result.output
