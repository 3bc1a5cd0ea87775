"""Install the hotspot on a Debian 12 router, or remove it: ``make install`` / ``make uninstall``.

Runs with Debian's own ``python3`` from a checkout (it imports nothing outside the
standard library and :mod:`gateway.config` / :mod:`gateway.ops.dnsmasq`), as root::

    python3 -m gateway.ops.install install [--destdir DIR]
    python3 -m gateway.ops.install uninstall [--destdir DIR] [--purge]

What ``install`` puts where (every step is idempotent; running it again after editing
the config re-renders what is derived from it):

==========================================  ===================================================
``/opt/perpuseru-hotspot/``                 a venv holding the package (``bin/hotspotctl``)
``/usr/local/bin/hotspotctl``               a link to the venv's ``hotspotctl``
``/etc/hotspot/hotspot.toml``               the commented config (kept if present)
``/etc/hotspot/hotspot.toml.example``       the current commented example, for comparison
``/etc/systemd/system/hotspot-*.service``   the two units
``/etc/dnsmasq.d/hotspot.conf``             DHCP, DNS, option 114 (from the config)
``/etc/redis/hotspot.conf``                 socket-only Redis with AOF, included by redis.conf
``/etc/sysctl.d/60-hotspot.conf``           IPv4 forwarding on
``/etc/bash_completion.d/hotspotctl``       shell completion
``/var/lib/hotspot``, ``/var/log/hotspot``  state (cookie key) and the session logs
``/var/lib/hotspot-dhcp``                   dhcp.hosts_dir: long leases for devices that logged in
users ``hotspot``, ``hotspot-gw``            run the portal and the gateway
==========================================  ===================================================

With ``--destdir`` everything is written under that folder instead of ``/`` and the
steps that change the running system (apt, users, ownership, systemctl, sysctl) are
skipped and listed: that is how the test suite exercises it. ``uninstall`` removes all
of the above except the config, the state and the logs (``--purge`` also removes the
config and state; session logs are never removed: they are the library's records).
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway import config as config_mod
from gateway.names import GUARD_PREF
from gateway.ops.dnsmasq import render_dnsmasq_conf
from gateway.ops.venv import relocate

__all__ = ["Layout", "Installer", "main"]

APT_PACKAGES = ("nftables", "iproute2", "redis-server", "dnsmasq", "python3-venv", "curl")
PORTAL_USER = "hotspot"  # runs the portal; its group reads the config and the cookie key
GATEWAY_USER = "hotspot-gw"  # runs the gateway, with CAP_NET_ADMIN from its unit
REDIS_GROUP = "redis"
REDIS_SOCKET = "/run/redis/redis-server.sock"
MARK = "# PerpuSeru Hotspot"
UNITS = ("hotspot-gateway.service", "hotspot-portal.service")
DOCS = ("install.md", "operations.md", "hotspot.example.toml")

REDIS_DROPIN = f"""\
{MARK}: written by `make install`, removed by `make uninstall` (see docs/install.md).
# Only local clients, through a socket of group "redis": the gateway and the portal
# are in that group, nothing else on the router can read the vouchers.
port 0
unixsocket {REDIS_SOCKET}
unixsocketperm 770
# Every write goes to the append-only file, flushed to disk every second: a power cut
# loses at most the last second (the session log on disk is fsynced on every record).
appendonly yes
appendfsync everysec
"""

SYSCTL = f"""\
{MARK}: the router forwards the library's traffic (written by `make install`).
net.ipv4.ip_forward = 1
# Redis: background saves and AOF rewrites fork; without this they can fail on a small box
vm.overcommit_memory = 1
"""


@dataclass(frozen=True)
class Layout:
    """Where things go on the router; ``root`` is ``/`` or the ``--destdir``."""

    root: Path = Path("/")
    prefix: str = "/opt/perpuseru-hotspot"
    config: str = "/etc/hotspot/hotspot.toml"
    unit_dir: str = "/etc/systemd/system"
    dnsmasq_dropin: str = "/etc/dnsmasq.d/hotspot.conf"
    dnsmasq_leases: str = "/var/lib/misc/dnsmasq.leases"
    redis_conf: str = "/etc/redis/redis.conf"
    redis_dropin: str = "/etc/redis/hotspot.conf"
    sysctl: str = "/etc/sysctl.d/60-hotspot.conf"
    bin_link: str = "/usr/local/bin/hotspotctl"
    completion: str = "/etc/bash_completion.d/hotspotctl"

    def __call__(self, path: str) -> Path:
        """Return ``path`` (absolute on the router) under the root."""
        return self.root / path.lstrip("/")


class InstallError(Exception):
    """The install cannot go on; the message says what to do."""


class Installer:
    """The steps of ``install`` and ``uninstall``; ``say`` prints one line per action."""

    def __init__(
        self,
        layout: Layout,
        source: Path,
        *,
        python: str = sys.executable,
        say: Callable[[str], None] = print,
        example: Path | None = None,
    ):
        self.L = layout
        self.source = source
        self.example = example or source / "docs" / "hotspot.example.toml"
        self.rerun = "make install"  # what re-renders the drop-ins (the package: dpkg-reconfigure)
        self.python = python
        self.say = say
        self.live = layout.root == Path("/")  # change the running system, not just files
        self.skipped: list[str] = []

    # -- install ------------------------------------------------------------------

    def install(self) -> list[str]:
        """Install or update everything; return the next steps for the admin."""
        if self.live and os.geteuid() != 0:
            raise InstallError("run it as root (sudo make install)")
        self.apt()
        self.users()
        self.venv()
        config_path, fresh = self.config_file()
        config = self.load_config(config_path)
        self.directories(config)
        self.units()
        self.dnsmasq(config)
        self.redis()
        self.write(self.L.sysctl, SYSCTL, 0o644)
        self.system("sysctl", "-q", "-p", self.L.sysctl)
        self.link_and_completion()
        self.system("systemctl", "daemon-reload")
        self.system("systemctl", "restart", "redis-server.service")
        lan_present = Path("/sys/class/net", config.network.lan_interface).exists()
        if lan_present:
            self.system("systemctl", "restart", "dnsmasq.service")
        return self.next_steps(config, fresh, lan_present)

    def apt(self) -> None:
        if not self.live:
            self.skipped.append(f"apt-get install {' '.join(APT_PACKAGES)}")
            return
        missing = [p for p in APT_PACKAGES if not _dpkg_installed(p)]
        if missing:
            self.say(f"installing Debian packages: {' '.join(missing)}")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            _run(["apt-get", "update", "-q"], env=env)
            _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)

    def users(self) -> None:
        # the units give them their groups (SupplementaryGroups=redis ...): no usermod needed
        for user, role in ((PORTAL_USER, "the portal"), (GATEWAY_USER, "the gateway")):
            if not self.live:
                self.skipped.append(f"useradd --system --user-group {user}")
                continue
            try:
                pwd.getpwnam(user)
            except KeyError:
                self.say(f"creating the system user {user} (runs {role})")
                _run(["useradd", "--system", "--user-group", "--home-dir", "/nonexistent",
                      "--no-create-home", "--shell", "/usr/sbin/nologin", user])  # fmt: skip

    def venv(self) -> None:
        prefix = self.L(self.L.prefix)
        if not (prefix / "bin" / "python").exists():
            self.say(f"creating the venv {self.L.prefix}")
            _run([self.python, "-m", "venv", str(prefix)])
        self.say(f"installing perpuseru-hotspot from {self.source} into {self.L.prefix}")
        # setuptools builds the wheel from build/lib and never prunes it: files of an earlier
        # build (a moved module, the development-only lab) would ship again. It is a cache.
        shutil.rmtree(self.source / "build", ignore_errors=True)
        _run([str(prefix / "bin" / "python"), "-m", "pip", "install", "-q",
              "--disable-pip-version-check", "--upgrade", str(self.source)])  # fmt: skip
        if not self.live:
            # staged (--destdir): the scripts' first lines name the staging folder; point them
            # at the folder they will run from on the router
            relocate(prefix, self.L.prefix)
        docs = prefix / "share" / "doc"
        docs.mkdir(parents=True, exist_ok=True)
        for name in DOCS:
            if (self.source / "docs" / name).exists():
                shutil.copyfile(self.source / "docs" / name, docs / name)

    def config_file(self) -> tuple[Path, bool]:
        """Write the commented config unless one is there; return its path and whether it is new."""
        example = self.example.read_text()
        path = self.L(self.L.config)
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "branding").mkdir(exist_ok=True)
        self.write(self.L.config + ".example", example, 0o644, quiet=True)
        if path.exists():
            self.say(f"keeping {self.L.config}")
            return path, False
        text = example.replace('url = "redis://127.0.0.1:6379/0"', f'url = "unix://{REDIS_SOCKET}"')
        self.write(self.L.config, text, 0o640, group=PORTAL_USER)
        return path, True

    def load_config(self, path: Path):
        try:
            return config_mod.load(path)
        except config_mod.ConfigError as err:
            raise InstallError(
                "\n".join([*err.lines(), "fix the config (hotspotctl config check), then run this again"])
            ) from None

    def directories(self, config) -> None:
        state = self.L(str(config.paths.state_dir))
        logs = self.L(str(config.paths.log_dir))
        # the gateway writes both; the portal reads the cookie key in state; adm reads logs
        for folder, group in ((state, PORTAL_USER), (logs, "adm")):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o750)
            self.chown(folder, group, user=GATEWAY_USER)
        if config.dhcp.hosts_dir:
            # the gateway writes one file per logged-in MAC; dnsmasq (its own user) reads them
            hosts = self.L(str(config.dhcp.hosts_dir))
            hosts.mkdir(parents=True, exist_ok=True)
            hosts.chmod(0o755)
            self.chown(hosts, GATEWAY_USER, user=GATEWAY_USER)
        secret = self.L(str(config.portal.secret_key_file))
        if not secret.exists():
            secret.parent.mkdir(parents=True, exist_ok=True)
            self.write(str(config.portal.secret_key_file), secrets.token_hex(32) + "\n", 0o640,
                       group=PORTAL_USER)  # fmt: skip

    def units(self) -> None:
        for unit in UNITS:
            text = (self.source / "systemd" / unit).read_text()
            self.write(f"{self.L.unit_dir}/{unit}", text, 0o644)

    def dnsmasq(self, config) -> None:
        text = render_dnsmasq_conf(config, lease_file=Path(self.L.dnsmasq_leases))
        self.write(self.L.dnsmasq_dropin, text, 0o644)

    def redis(self) -> None:
        self.write(self.L.redis_dropin, REDIS_DROPIN, 0o640, group=REDIS_GROUP)
        conf = self.L(self.L.redis_conf)
        if not conf.exists():
            self.skipped.append(f"add `include {self.L.redis_dropin}` to {self.L.redis_conf} (not found)")
            return
        text = conf.read_text()
        line = f"include {self.L.redis_dropin}"
        if line not in text.splitlines():
            # last, so its settings win over the ones above (Redis: the last line wins)
            conf.write_text(text + ("" if text.endswith("\n") else "\n") + f"{MARK}\n{line}\n")
            self.say(f"{self.L.redis_conf}: includes {self.L.redis_dropin}")

    def link_and_completion(self) -> None:
        link = self.L(self.L.bin_link)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(f"{self.L.prefix}/bin/hotspotctl")
        # through the venv's python, not bin/hotspotctl: staged (--destdir), its first line
        # already names the router's path, which does not exist here
        python = self.L(self.L.prefix) / "bin" / "python"
        result = subprocess.run(
            [str(python), "-c", "from gateway.cli import main; main()"],
            env={**os.environ, "_HOTSPOTCTL_COMPLETE": "bash_source"},
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode == 0 and result.stdout:
            self.write(self.L.completion, result.stdout, 0o644)

    def next_steps(self, config, fresh: bool, lan_present: bool) -> list[str]:
        steps = []
        if fresh:
            steps.append(
                f"Edit {self.L.config}: [library] id, name, timezone; [network] lan_interface, "
                "wan_interface, lan_address; [uplink] down/up; the [plans]."
            )
        else:
            steps.append(f"Review {self.L.config} (the current example is hotspot.toml.example beside it).")
        steps += [
            "Check it: hotspotctl config check",
            f"After editing, run `{self.rerun}` again: it re-renders the dnsmasq drop-in from the config.",
        ]
        if not lan_present:
            steps.append(
                f"The LAN interface {config.network.lan_interface!r} does not exist here yet: set "
                f"network.lan_interface (e.g. the bridge br-lan), then `{self.rerun}` again."
            )
        steps += [
            "Start: systemctl enable --now hotspot-gateway hotspot-portal",
            "Look: hotspotctl status; hotspotctl doctor; journalctl -u hotspot-gateway -f",
            "The desk: hotspotctl librarian add NAME --role admin; then hotspotctl voucher issue "
            "--plan harian --count 5 for a first test.",
            "Wi-Fi: plug the access point into the LAN port (docs/install.md, 'The Wi-Fi side').",
        ]
        return steps

    # -- the Debian package's maintainer scripts -------------------------------------

    def configure(self) -> list[str]:
        """``postinst configure``: what ``install`` does that the package's files do not.

        dpkg has put the venv, the units, the completion and the command in place and
        installs the Debian packages it depends on; this creates the users, the config
        (kept if present), the state and log folders, and the dnsmasq, Redis and sysctl
        drop-ins rendered from the config.
        """
        self.rerun = "dpkg-reconfigure perpuseru-hotspot"
        self.users()
        config_path, fresh = self.config_file()
        config = self.load_config(config_path)
        self.directories(config)
        self.dnsmasq(config)
        self.redis()
        self.write(self.L.sysctl, SYSCTL, 0o644)
        self.system("sysctl", "-q", "-p", self.L.sysctl)
        self.system("systemctl", "try-restart", "redis-server.service")
        lan_present = Path("/sys/class/net", config.network.lan_interface).exists()
        if lan_present:
            self.system("systemctl", "try-restart", "dnsmasq.service")
        return self.next_steps(config, fresh, lan_present)

    def unconfigure(self) -> None:
        """``prerm remove``: undo the drop-ins; config, state and logs stay (``postrm purge``)."""
        self.remove(self.L.dnsmasq_dropin)
        self.system("systemctl", "try-restart", "dnsmasq.service")
        self.unredis()
        self.remove(self.L.sysctl)
        self.remove(self.L.config + ".example")

    # -- uninstall ----------------------------------------------------------------

    def uninstall(self, *, purge: bool = False) -> list[str]:
        """Remove what ``install`` added; keep logs (and, unless ``purge``, config and state)."""
        if self.live and os.geteuid() != 0:
            raise InstallError("run it as root (sudo make uninstall)")
        kept = []
        config = None
        try:
            config = config_mod.load(self.L(self.L.config))
        except Exception:  # noqa: BLE001, S110 - a broken or missing config must not block removal
            pass
        self.system("systemctl", "disable", "--now", *UNITS)
        # the gateway's fail-closed routing rules (docs/security.md) outlive it: without them
        # the LAN forwards again (the table stays until a reboot, as on every stop)
        for family in ("-4", "-6"):
            for pref in (GUARD_PREF + 1, GUARD_PREF):
                self.system("ip", family, "rule", "del", "pref", str(pref))
        for unit in UNITS:
            self.remove(f"{self.L.unit_dir}/{unit}")
        self.system("systemctl", "daemon-reload")
        self.remove(self.L.dnsmasq_dropin)
        self.system("systemctl", "try-restart", "dnsmasq.service")
        self.unredis()
        self.remove(self.L.sysctl)
        self.remove(self.L.bin_link)
        self.remove(self.L.completion)
        prefix = self.L(self.L.prefix)
        if prefix.exists():
            shutil.rmtree(prefix)
            self.say(f"removed {self.L.prefix}")
        self.remove(self.L.config + ".example")
        if config and config.dhcp.hosts_dir and self.L(str(config.dhcp.hosts_dir)).exists():
            shutil.rmtree(self.L(str(config.dhcp.hosts_dir)))  # only dnsmasq's drop-in used it
            self.say(f"removed {config.dhcp.hosts_dir}")
        state = str(config.paths.state_dir) if config else "/var/lib/hotspot"
        logs = str(config.paths.log_dir) if config else "/var/log/hotspot"
        if purge:
            for path in (str(Path(self.L.config).parent), state):
                if self.L(path).exists():
                    shutil.rmtree(self.L(path))
                    self.say(f"removed {path}")
            self.system("userdel", PORTAL_USER)
            self.system("userdel", GATEWAY_USER)
        else:
            kept += [f"{Path(self.L.config).parent} (config)", f"{state} (state)"]
        kept.append(f"{logs} (session logs: the library's records; delete them by hand when allowed)")
        return kept

    def unredis(self) -> None:
        conf = self.L(self.L.redis_conf)
        if conf.exists():
            lines = conf.read_text().splitlines(keepends=True)
            drop = {f"{MARK}\n", f"include {self.L.redis_dropin}\n"}
            kept = [line for line in lines if line not in drop]
            if kept != lines:
                # write the data out before AOF is switched off, so nothing is lost on restart
                self.system("redis-cli", "-s", REDIS_SOCKET, "save")
                conf.write_text("".join(kept))
                self.say(f"{self.L.redis_conf}: no longer includes {self.L.redis_dropin}")
        self.remove(self.L.redis_dropin)
        self.system("systemctl", "try-restart", "redis-server.service")

    # -- helpers ------------------------------------------------------------------

    def write(self, path: str, text: str, mode: int, *, group: str | None = None, quiet=False) -> None:
        """Write ``text`` to ``path`` (under the root) atomically with ``mode`` (and ``group``)."""
        target = self.L(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        changed = not target.exists() or target.read_text() != text
        if changed:
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(text)
            tmp.chmod(mode)
            os.replace(tmp, target)
            if not quiet:
                self.say(f"wrote {path}")
        target.chmod(mode)
        if group:
            self.chown(target, group)

    def chown(self, path: Path, group: str, *, user: str = "root") -> None:
        if not self.live:
            return
        try:
            os.chown(path, pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid)
        except KeyError:
            self.say(f"warning: no user {user} or group {group}; {path} stays root's")

    def remove(self, path: str) -> None:
        target = self.L(path)
        if target.is_symlink() or target.exists():
            target.unlink()
            self.say(f"removed {path}")

    def system(self, *argv: str) -> None:
        """Run a command that changes the running system (skipped with --destdir or without systemd)."""
        if not self.live:
            self.skipped.append(" ".join(argv))
            return
        if argv[0] == "systemctl" and not Path("/run/systemd/system").exists():
            self.skipped.append(" ".join(argv) + " (systemd is not running)")
            return
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            self.say(f"warning: {' '.join(argv)}: {result.stderr.strip() or result.returncode}")


def _dpkg_installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return "ok installed" in result.stdout


def _run(argv: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise InstallError(f"{' '.join(argv)} failed: {(result.stderr or result.stdout).strip()[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    """``python3 -m gateway.ops.install install|uninstall [--destdir DIR] [--purge]``."""
    parser = argparse.ArgumentParser(
        prog="python3 -m gateway.ops.install", description=__doc__.splitlines()[0]
    )
    parser.add_argument("action", choices=("install", "uninstall", "configure", "unconfigure"))
    parser.add_argument(
        "--destdir", default="", help="install under this folder instead of / (packaging, tests)"
    )
    parser.add_argument("--purge", action="store_true", help="uninstall: also remove the config and state")
    parser.add_argument(
        "--example", type=Path, help="configure: the commented example config (the package's copy)"
    )
    args = parser.parse_args(argv)
    source = Path(__file__).resolve().parents[2]
    root = Path(args.destdir).resolve() if args.destdir else Path("/")
    installer = Installer(Layout(root=root), source, example=args.example)
    try:
        if args.action == "install":
            steps = installer.install()
        elif args.action == "configure":
            steps = installer.configure()
            for line in installer.skipped:
                print(f"  skipped: {line}")
            print("\nPerpuSeru Hotspot is configured. Next steps:")
            for i, step in enumerate(steps, start=1):
                print(f"  {i}. {step}")
            return 0
        elif args.action == "unconfigure":
            installer.unconfigure()
            return 0
        else:
            kept = installer.uninstall(purge=args.purge)
    except InstallError as err:
        print(f"install: {err}", file=sys.stderr)
        return 1
    if installer.skipped:
        print("\nnot done here (--destdir or no systemd); on a router these run too:")
        for line in installer.skipped:
            print(f"  {line}")
    if args.action == "install":
        print("\nPerpuSeru Hotspot is installed. Next steps:")
        for i, step in enumerate(steps, start=1):
            print(f"  {i}. {step}")
    else:
        print("\nPerpuSeru Hotspot is removed. Left in place:")
        for line in kept:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
