"""Bring the lab up and down: namespaces, links, and the processes that make it a library.

``Lab.up()`` is idempotent: it builds what is missing (namespaces, links, addresses,
processes, DHCP leases) and leaves what runs alone. ``Lab.down()`` stops every
process it started, by the PID it recorded (and only if that PID still lives in a lab
namespace), then deletes the namespaces. State (Redis data, logs) stays under
``lab_dir`` unless ``wipe=True``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import redis

from gateway import config as config_mod
from gateway.lab import netns
from gateway.lab.headquarters import Headquarters
from gateway.lab.netns import LabError, run
from gateway.lab.topology import (
    HQ_IP,
    IPERF_PORTS,
    LAN_ROUTER,
    TUNNEL_DOMAIN,
    TUNNEL_PORT,
    UPSTREAM_IP,
    UPSTREAM_WALLED_IP,
    WAN_ROUTER,
    LabSpec,
    client_mac,
    lab_config_text,
    plan_lab,
    site_link,
)
from gateway.model import keys
from gateway.ops.dnsmasq import render_dnsmasq_conf

__all__ = ["Lab", "LabError", "Proc", "default_lab_dir", "pid_alive", "project_root"]

NOBODY = 65534
LAB_NAT_TABLE = "lab_nat"


def project_root() -> Path:
    """Return the checkout this package runs from (the folder holding pyproject.toml), else cwd."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def default_lab_dir(prefix: str) -> Path:
    """Return where the lab with ``prefix`` keeps its config, state and logs."""
    env = os.environ.get("HOTSPOT_LAB_DIR")
    base = Path(env) if env else project_root() / ".lab"
    return base / prefix.rstrip("-")


@dataclass
class Proc:
    """A process the lab runs: its namespace, command line and readiness check."""

    name: str
    ns: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None
    ready_timeout: float = 15.0
    after: Callable[[], None] | None = None  # run once it is ready (e.g. load a schema)


class Lab:
    """The lab with a given prefix and size, rooted at ``lab_dir``."""

    def __init__(self, spec: LabSpec | None = None, lab_dir: Path | None = None):
        self.spec = spec or LabSpec()
        self.dir = lab_dir or default_lab_dir(self.spec.prefix)
        self.run_dir = self.dir / "run"
        self.log_dir = self.dir / "log"
        self.config_path = self.dir / "hotspot.toml"
        self.python = sys.executable
        self.hq = Headquarters(self.spec, self.dir) if self.spec.hq else None

    # -- public API -------------------------------------------------------------------

    def up(self, *, say: Callable[[str], None] = lambda line: None) -> list[str]:
        """Build or repair the whole lab; return a line per change made."""
        _require_root()
        for tool in ("ip", "nft", "redis-server", "dnsmasq", "iperf3", "udhcpc", "setpriv"):
            if shutil.which(tool) is None:
                raise LabError(f"{tool} is not installed; run `make deps` (or see README)")
        if self.hq is not None:
            self.hq.check_tools()
        changes: list[str] = []
        config = self._write_config()
        say(f"config: {self.config_path}")
        self._prune_stale_pidfiles(config)  # e.g. phones beyond a smaller --clients
        changes += netns.apply_plan(plan_lab(self.spec))
        self._ensure_nat()
        if self.spec.hq_of:
            self._join_hq(config)
        say(f"namespaces: {', '.join(self.spec.namespaces)}")
        self._write_dnsmasq_confs(config)
        for proc in self.processes(config):
            if self.is_running(proc.name):
                continue
            self.start(proc)
            changes.append(f"started {proc.name}")
            say(f"started {proc.name} in {proc.ns}")
        return changes

    def down(self, *, wipe: bool = False, say: Callable[[str], None] = lambda line: None) -> None:
        """Stop every lab process and delete the namespaces; keep state unless ``wipe``."""
        _require_root()
        for pidfile in sorted(self.run_dir.glob("*.pid")) if self.run_dir.is_dir() else []:
            name = pidfile.stem
            if self.stop(name):
                say(f"stopped {name}")
        for ns in netns.lab_namespaces(self.spec.prefix):
            for pid in _netns_pids(ns):  # anything left in our namespaces was started by the lab
                _kill_and_wait(pid, signal.SIGKILL, 2)
                say(f"killed leftover pid {pid} in {ns}")
        namespaces = netns.lab_namespaces(self.spec.prefix)
        netns.delete_namespaces(namespaces)
        if namespaces:
            say(f"deleted namespaces: {', '.join(namespaces)}")
        if wipe and self.dir.exists():
            shutil.rmtree(self.dir)
            say(f"wiped {self.dir}")

    def status(self) -> dict:
        """Return what exists and runs: namespaces, processes, phones' addresses."""
        names = netns.lab_namespaces(self.spec.prefix)
        procs = {}
        if self.run_dir.is_dir():
            for pidfile in sorted(self.run_dir.glob("*.pid")):
                procs[pidfile.stem] = {
                    "pid": self._pid(pidfile.stem),
                    "running": self.is_running(pidfile.stem),
                }
        clients = {}
        for ns in names:
            if ns[len(self.spec.prefix) :].startswith("c"):
                clients[ns] = self.client_ip(ns)
        return {
            "prefix": self.spec.prefix,
            "lab_dir": str(self.dir),
            "config": str(self.config_path),
            "namespaces": names,
            "processes": procs,
            "clients": clients,
        }

    def exec(
        self, ns: str, *argv: str, timeout: float = 30, check: bool = False, input: str | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` inside namespace ``ns`` and return the completed process."""
        try:
            result = subprocess.run(
                ["ip", "netns", "exec", ns, *argv],
                capture_output=True, text=True, timeout=timeout, input=input,
            )  # fmt: skip
        except subprocess.TimeoutExpired as err:
            raise LabError(f"{ns}: {' '.join(argv)}: no answer within {timeout:.0f}s") from err
        if check and result.returncode != 0:
            raise LabError(f"{ns}: {' '.join(argv)}: {result.stderr.strip() or result.stdout.strip()}")
        return result

    def client_ip(self, ns: str) -> str | None:
        """Return the IPv4 address a phone namespace holds on eth0 (from DHCP), if any."""
        out = self.exec(ns, "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout.split()
        return out[out.index("inet") + 1].split("/")[0] if "inet" in out else None

    def client_mac(self, index: int) -> str:
        return client_mac(index)

    def config(self) -> config_mod.Config:
        return config_mod.load(self.config_path)

    # -- processes --------------------------------------------------------------------

    def processes(self, config: config_mod.Config) -> list[Proc]:
        """Return every process of the lab, in start order."""
        s = self.spec
        env = {"HOTSPOT_CONFIG": str(self.config_path), "PYTHONUNBUFFERED": "1"}
        procs = [
            Proc(
                "redis",
                s.gw,
                ["redis-server", str(self.dir / "redis.conf")],
                ready=self._redis_ready,
            ),
            Proc(
                "dns-upstream",
                s.up,
                ["dnsmasq", "-k", f"--conf-file={self.dir / 'dnsmasq-upstream.conf'}"],
            ),
            Proc(
                "dnsmasq",
                s.gw,
                ["dnsmasq", "-k", f"--conf-file={self.dir / 'dnsmasq.conf'}"],
            ),
            Proc(
                "upstream",
                s.up,
                [self.python, "-m", "gateway.lab.upstream", "--port", "80"],
                env=env,
                ready=lambda: self._http_ok(s.gw, f"http://{UPSTREAM_IP}/"),
            ),
        ]
        for port in IPERF_PORTS:
            procs.append(Proc(f"iperf3-{port}", s.up, ["iperf3", "-s", "-p", str(port)]))
        if self.hq is not None:
            hq = self.hq
            procs += [
                Proc("postgres", s.hq_ns, hq.postgres_argv(), ready=hq.postgres_ready, ready_timeout=60,
                     after=hq.bootstrap_database),
                Proc("freeradius", s.hq_ns, hq.freeradius_argv(), ready=hq.freeradius_ready),
            ]  # fmt: skip
        procs += [
            Proc(
                "gateway", s.gw,
                [self.python, "-m", "gateway.daemon", "--config", str(self.config_path)],
                env=env,
                ready=lambda: self._gateway_ready(config),
            ),
            Proc(
                "portal", s.gw,
                ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                 "--inh-caps=-all", "--", self.python, "-m", "portal"],
                env=env,
                ready=lambda: self._http_ok(s.gw, f"http://{LAN_ROUTER}:{config.portal.port}/healthz"),
            ),
        ]  # fmt: skip
        script = self.dir / "udhcpc.script"
        for i, ns in enumerate(s.client_namespaces, start=1):
            procs.append(
                Proc(
                    f"dhcp-c{i}", ns,
                    ["udhcpc", "-f", "-i", "eth0", "-s", str(script), "-x", f"hostname:phone{i}",
                     "-t", "20", "-T", "1", "-A", "2"],
                    ready=lambda ns=ns: self.client_ip(ns) is not None,
                )
            )  # fmt: skip
        return procs

    def process(self, name: str) -> Proc:
        """Return the lab process called ``name`` (e.g. "gateway", "redis", "dhcp-c1")."""
        for proc in self.processes(self.config()):
            if proc.name == name:
                return proc
        raise LabError(f"no lab process named {name}")

    def start(self, proc: Proc | str) -> int:
        """Start a lab process, wait until it is ready, and return its PID."""
        if isinstance(proc, str):
            proc = self.process(proc)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**_base_env(), **proc.env}
        pid = _spawn(["ip", "netns", "exec", proc.ns, *proc.argv], env, self.log_dir / f"{proc.name}.log")
        (self.run_dir / f"{proc.name}.pid").write_text(f"{pid}\n{proc.ns}\n")
        deadline = time.monotonic() + proc.ready_timeout
        log_hint = f"see {self.log_dir / (proc.name + '.log')}"
        while proc.ready is not None and not proc.ready():
            if not _alive(pid):
                raise LabError(f"{proc.name} exited before it was ready; {log_hint}")
            if time.monotonic() > deadline:
                raise LabError(f"{proc.name} not ready after {proc.ready_timeout:.0f}s; {log_hint}")
            time.sleep(0.05)
        if proc.after is not None:
            proc.after()
        return pid

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 10.0) -> bool:
        """Signal a lab process by its recorded PID and wait for it; return whether it ran."""
        pid = self._pid(name)
        pidfile = self.run_dir / f"{name}.pid"
        ran = pid is not None and self.is_running(name)
        if ran:
            _kill_and_wait(pid, sig, timeout)
            if _alive(pid):
                _kill_and_wait(pid, signal.SIGKILL, 2)
        pidfile.unlink(missing_ok=True)
        return ran

    def restart(self, name: str, sig: int = signal.SIGTERM) -> int:
        """Stop (with ``sig``) and start a lab process again; return the new PID."""
        self.stop(name, sig)
        return self.start(name)

    def is_running(self, name: str) -> bool:
        """Return whether the recorded PID of ``name`` lives, inside its lab namespace."""
        pidfile = self.run_dir / f"{name}.pid"
        try:
            pid_text, ns = pidfile.read_text().split()[:2]
        except (FileNotFoundError, ValueError):
            return False
        return _in_netns(int(pid_text), ns)

    def pid(self, name: str) -> int | None:
        return self._pid(name)

    def _pid(self, name: str) -> int | None:
        try:
            return int((self.run_dir / f"{name}.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def _prune_stale_pidfiles(self, config: config_mod.Config) -> None:
        wanted = {p.name for p in self.processes(config)}
        for pidfile in self.run_dir.glob("*.pid") if self.run_dir.is_dir() else []:
            if pidfile.stem not in wanted:
                self.stop(pidfile.stem)

    # -- files ------------------------------------------------------------------------

    def _write_config(self) -> config_mod.Config:
        for sub in (
            self.dir,
            self.dir / "state",
            self.dir / "log",
            self.dir / "branding",
            self.dir / "redis",
            self.dir / "state" / "dhcp-hosts",
        ):
            sub.mkdir(parents=True, exist_ok=True)
        # the portal runs as nobody: it must read the config and reach the Redis socket
        for folder in (self.dir, self.dir / "state", self.dir / "branding"):
            folder.chmod(0o755)
        text = lab_config_text(self.dir, self.spec.prefix, self.spec.clients)
        text = text.replace(
            '[uplink]\ndown = "10mbit"\nup = "10mbit"',
            f'[uplink]\ndown = "{self.spec.uplink}"\nup = "{self.spec.uplink}"',
        )
        if self.hq is not None:
            text += self.hq.router_config_section()
        if self.spec.hq_of:
            text = text.replace('\nid = "lab"\n', f'\nid = "lab-{self.spec.site}"\n', 1)
            text += self._joined_radius_section()
        if not self.config_path.exists() or self.config_path.read_text() != text:
            self.config_path.write_text(text)
        self.config_path.chmod(0o644)
        if self.hq is not None:
            self.hq.secret()  # the router's [radius] section names this file
        config = config_mod.load(self.config_path)
        if self.hq is not None:
            self.hq.write_config(config.library.id)
        secret = config.portal.secret_key_file
        if not secret.exists():
            secret.write_text(secrets.token_hex(32) + "\n")
        secret.chmod(0o644)  # lab only: on a router it is 0640 root:hotspot
        script = self.dir / "udhcpc.script"
        script.write_text(resources.files("gateway.lab").joinpath("udhcpc.script").read_text())
        script.chmod(0o755)
        (self.dir / "redis.conf").write_text(
            "\n".join([
                "port 0",
                f"unixsocket {self.dir / 'redis.sock'}",
                "unixsocketperm 777",  # lab only; on a router the socket is group-restricted
                f"dir {self.dir / 'redis'}",
                "appendonly yes",
                "appendfsync everysec",
                "save 60 1",
                "daemonize no",
                "loglevel notice",
            ]) + "\n"
        )  # fmt: skip
        return config

    # -- a library joining another lab's HQ ----------------------------------------------

    @property
    def joined_secret_file(self) -> Path:
        return self.dir / "radius.secret"

    def _joined_radius_section(self) -> str:
        secret = self.joined_secret_file
        if not secret.exists():
            secret.write_text(secrets.token_hex(20) + "\n")  # hex: a leading "-" reads as a radclient option
        secret.chmod(0o644)  # lab only: the portal runs as nobody
        _near, far = site_link(self.spec.site)
        return "\n".join(
            [
                "",
                f"# joins the HQ of the lab {self.spec.hq_of} as site {self.spec.site}: docs/fleet.md",
                "[radius]",
                f'servers = ["{HQ_IP}"]',
                f'secret_file = "{secret}"',
                "timeout = 0.5",
                "retries = 2",
                'interim_interval = "10s"',
                f'dynauth_listen = "{WAN_ROUTER}:3799"',
                f'dynauth_clients = ["{far}"]',
                "",
            ]
        )

    def _join_hq(self, config: config_mod.Config) -> None:
        """NAT this library's internet towards the HQ link and tell the HQ lab about it."""
        near, far = site_link(self.spec.site)
        nat = (
            "table ip lab_hq_link\ndelete table ip lab_hq_link\n"
            "table ip lab_hq_link {\n"
            "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
            '    oifname "hq0" masquerade comment "HQ knows this library by its link address"\n  }\n'
            "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n"
            f'    iifname "hq0" ip daddr {near} udp dport 3799 dnat to {WAN_ROUTER}:3799'
            " comment \"HQ's Disconnect/CoA to this library's router\"\n  }\n}\n"
        )
        self.exec(self.spec.up, "nft", "-f", "-", input=nat, check=True)
        hq_lab = Lab(LabSpec(prefix=self.spec.hq_of, hq=True), default_lab_dir(self.spec.hq_of))
        assert hq_lab.hq is not None  # noqa: S101 (hq=True above)
        secret = self.joined_secret_file.read_text().strip()
        known = (config.library.id, near, secret) in hq_lab.hq.joined_sites()
        if not known:
            hq_lab.hq.register_site(self.spec.site, config.library.id, near, secret)
            hq_lab.hq.write_config(hq_lab.config().library.id)
            hq_lab.restart("freeradius")

    def _write_dnsmasq_confs(self, config: config_mod.Config) -> None:
        lab_extra = (
            "no-ping", "user=root", "pid-file=", "log-facility=-", "log-dhcp",
        )  # fmt: skip
        (self.dir / "dnsmasq.conf").write_text(
            render_dnsmasq_conf(config, lease_file=config.dhcp.lease_file, extra=lab_extra)
        )
        walled = [f"address=/{host}/{UPSTREAM_WALLED_IP}" for host in config.walled_garden.hosts]
        (self.dir / "dnsmasq-upstream.conf").write_text(
            "\n".join([
                "# the lab's internet DNS: every name is the upstream host, walled-garden names a second one",
                "port=53", "no-resolv", "no-hosts", "user=root", "pid-file=", "log-facility=-",
                *walled,
                # a DNS-tunnel endpoint for the security tests (docs/security.md)
                f"server=/{TUNNEL_DOMAIN}/127.0.0.1#{TUNNEL_PORT}",
                f"address=/#/{UPSTREAM_IP}",
            ]) + "\n"
        )  # fmt: skip

    def _ensure_nat(self) -> None:
        # The router's own NAT towards the fibre modem: base router config, not the hotspot's.
        # It lives in its own table so the hotspot replacing `inet hotspot` never touches it.
        ruleset = (
            f"table ip {LAB_NAT_TABLE} {{\n"
            "  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            '    oifname "wan0" masquerade comment "router NAT to the uplink"\n'
            "  }\n}\n"
        )
        # create-then-delete-then-define in one batch: atomic and idempotent
        batch = f"table ip {LAB_NAT_TABLE}\ndelete table ip {LAB_NAT_TABLE}\n{ruleset}"
        self.exec(self.spec.gw, "nft", "-f", "-", input=batch, check=True)

    # -- readiness --------------------------------------------------------------------

    def _redis_ready(self) -> bool:
        try:
            return bool(redis.Redis(unix_socket_path=str(self.dir / "redis.sock"), socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def _gateway_ready(self, config: config_mod.Config) -> bool:
        try:
            client = redis.Redis.from_url(config.redis_url, socket_timeout=1)
            return bool(client.exists(keys.GATEWAY_HEARTBEAT))
        except redis.RedisError:
            return False

    def _http_ok(self, ns: str, url: str) -> bool:
        result = self.exec(
            ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "1", url, timeout=5
        )
        return result.stdout.strip() in ("200", "204", "302")


# -- process helpers ------------------------------------------------------------------


def _require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab builds network namespaces: run it as root (e.g. sudo)")


def _base_env() -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TERM", "HOME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    # the portal runs as nobody: keep Python from writing bytecode caches into the checkout
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> int:
    """Start ``argv`` in a new session with stdout/stderr appended to ``log_path``; return its PID.

    posix_spawn rather than subprocess.Popen: the lab's processes outlive the command
    that starts them, and a Popen object would complain when it is collected.
    """
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        return os.posix_spawnp(
            argv[0],
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, fd, 1),
                (os.POSIX_SPAWN_DUP2, fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Return whether ``pid`` runs (a zombie counts as gone)."""
    return _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours is dead for our purposes
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _in_netns(pid: int, ns: str) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(netns.NETNS_DIR / ns).st_ino and _alive(pid)
    except (FileNotFoundError, PermissionError):
        return False


def _kill_and_wait(pid: int, sig: int, timeout: float) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)  # reap if it is our child
        except ChildProcessError:
            pass
        time.sleep(0.05)


def _netns_pids(ns: str) -> list[int]:
    result = run("ip", "netns", "pids", ns, check=False)
    return [int(p) for p in result.stdout.split() if p.isdigit()]
