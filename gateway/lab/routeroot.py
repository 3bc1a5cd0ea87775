"""A lab router with the Debian package installed for real: a Debian root in the router's namespace.

The lab's routers are network namespaces sharing the development machine's filesystem, so
``dpkg -i`` cannot run on one of them. A *router root* is a Debian 12 root made by
``mmdebstrap`` (minbase plus the package's dependencies; the tarball is made once and
unpacked per use, ~5 s) in which dpkg installs the package, and every command in it runs
as ``ip netns exec <router ns> chroot <root> ...``: dpkg, its maintainer scripts, and the
gateway, portal and Redis the package's units start, all see the root's files and the lab
router's interfaces. The phones, the lab's "internet" and the lab's DHCP server are the
session lab's, unchanged.

systemd does not run in a chroot. :mod:`gateway.lab.unitctl` is copied in as
``systemctl`` and ``/run/systemd/system`` is created, so the maintainer scripts take their
systemd branch (``deb-systemd-invoke try-restart ...``) and the stand-in starts and stops the
units' ``ExecStart=`` as their ``User=`` with their capabilities; what it leaves out (the
sandboxing, ``Restart=``, readiness) is listed there. Nothing here is mounted in the
machine's mount namespace: the services mount their own ``/proc`` in a private one.

Used by ``tests/package/test_upgrade_lab.py`` and ``bench/rollout.py --upgrade``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from gateway.lab import netns
from gateway.lab.lab import Lab, pid_alive
from gateway.lab.topology import LAN_ROUTER, UPSTREAM_IP
from gateway.model import keys

__all__ = [
    "DEPENDS",
    "RouterRoot",
    "Streams",
    "make_base_tarball",
    "repack",
    "udp_streams",
]

# what the package depends on, plus passwd (its users), procps (sysctl) and python3-apt (the
# apt module of the Ansible role, run against the root in tests/package/test_upgrade_lab.py)
DEPENDS = "python3,python3.11,nftables,redis-server,dnsmasq,dnsmasq-base,iproute2,passwd,procps,python3-apt"
UNITS = ("redis-server.service", "hotspot-gateway.service", "hotspot-portal.service")
UNITCTL = Path(__file__).with_name("unitctl.py")
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "DEBIAN_FRONTEND": "noninteractive",
    "LC_ALL": "C.UTF-8",
}


def make_base_tarball(out: Path, *, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run mmdebstrap (Debian 12 minbase + :data:`DEPENDS`, from the machine's apt sources) into ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.stem + ".part.tar")  # mmdebstrap goes by the name's ending too
    result = subprocess.run(
        ["mmdebstrap", "--quiet", "--variant=minbase", "--mode=root", "--format=tar", f"--include={DEPENDS}",
         "bookworm", str(partial)],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if result.returncode == 0:
        partial.rename(out)
    else:
        partial.unlink(missing_ok=True)
    return result


def repack(deb: Path, out: Path, work: Path, *, version: str, break_module: str | None = None) -> Path:
    """A copy of ``deb`` as ``version`` (control and ``gateway.__version__``), optionally with
    ``break_module`` (a path under site-packages, e.g. ``gateway/shaping/book.py``) made to fail
    on import: the "package that fails its post-install check" of the fault tests."""
    tree = work / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN" / "control"
    control.write_text(re.sub(r"^Version: .*$", f"Version: {version}", control.read_text(), flags=re.M))
    site = next((tree / "opt/perpuseru-hotspot/lib").glob("python3*/site-packages"))
    init = site / "gateway" / "__init__.py"
    init.write_text(
        re.sub(r'^__version__ = "[^"]*"$', f'__version__ = "{version}"', init.read_text(), flags=re.M)
    )
    changed = [init]
    if break_module:
        broken = site / break_module
        broken.write_text(
            broken.read_text() + '\nraise ImportError("a broken build: this module cannot be imported")\n'
        )
        changed.append(broken)
    md5sums = tree / "DEBIAN" / "md5sums"
    lines = md5sums.read_text().splitlines()
    for path in changed:
        rel = str(path.relative_to(tree))
        digest = subprocess.run(
            ["md5sum", str(path)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
        lines = [f"{digest}  {rel}" if line.endswith(f"  {rel}") else line for line in lines]
    md5sums.write_text("\n".join(lines) + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    # gzip -1: seconds, where xz takes a minute; dpkg does not care how it is compressed
    subprocess.run(["dpkg-deb", "-Zgzip", "-z1", "--root-owner-group", "-b", str(tree), str(out)], check=True,
                   capture_output=True)  # fmt: skip
    shutil.rmtree(tree, ignore_errors=True)
    return out


@dataclass
class RouterRoot:
    """A Debian root at ``root`` whose commands run in lab network namespace ``ns``."""

    root: Path
    ns: str
    log: list[str] = field(default_factory=list)

    @classmethod
    def unpack(cls, tarball: Path, root: Path, ns: str) -> RouterRoot:
        """Unpack the mmdebstrap tarball into ``root`` and install the systemctl stand-in."""
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        # our own mmdebstrap output: device nodes and owners as they are (tar, as root)
        subprocess.run(["tar", "-C", str(root), "-xf", str(tarball)], check=True, timeout=300)
        router = cls(root, ns)
        systemctl = root / "usr/local/sbin/systemctl"
        systemctl.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(UNITCTL, systemctl)
        systemctl.chmod(0o755)
        (root / "run/systemd/system").mkdir(parents=True, exist_ok=True)
        return router

    # -- commands inside ------------------------------------------------------------------

    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, "chroot", str(self.root), *argv]

    def run(self, *argv: str, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess:
        """Run ``argv`` in the root, in the router's namespace; log it with its outcome."""
        started = time.monotonic()
        result = subprocess.run(self.argv(*argv), capture_output=True, text=True, env=ENV, timeout=timeout)
        self.log.append(f"{' '.join(argv)}: rc {result.returncode} in {time.monotonic() - started:.1f}s")
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)}: rc {result.returncode}\n{result.stdout[-3000:]}"
                                 f"\n{result.stderr[-3000:]}")  # fmt: skip
        return result

    def popen(self, *argv: str) -> subprocess.Popen:
        """Start ``argv`` in the root, output discarded, in a process group of its own (so it can
        be killed as a whole, as a fault test does to dpkg)."""
        quiet = subprocess.DEVNULL
        return subprocess.Popen(self.argv(*argv), stdout=quiet, stderr=quiet, env=ENV, start_new_session=True)

    def copy_in(self, path: Path) -> str:
        """Copy a file into the root's /tmp; return its path inside."""
        shutil.copyfile(path, self.root / "tmp" / path.name)
        return f"/tmp/{path.name}"  # noqa: S108 (inside the root)

    def dpkg_status(self) -> str:
        return self.run("dpkg-query", "-W", "-f=${Status} ${Version}", "perpuseru-hotspot").stdout

    def version_on_disk(self) -> str:
        return self.run("/opt/perpuseru-hotspot/bin/hotspotctl", "version").stdout.split()[-1]

    # -- the router's config and services ----------------------------------------------------

    def write_config(self, lab: Lab) -> None:
        """Make /etc/hotspot/hotspot.toml the lab router's config with a router's paths (Redis on
        its socket, state in /var/lib/hotspot, logs in /var/log/hotspot, no netns)."""
        text = lab.config_path.read_text()
        lab_dir = str(lab.dir)
        text = re.sub(r"^netns = .*\n", "", text, flags=re.M)
        text = re.sub(r"^branding_dir = .*\n", "", text, flags=re.M)
        for old, new in (
            (f"unix://{lab_dir}/redis.sock", "unix:///run/redis/redis-server.sock"),
            (f"{lab_dir}/state/dnsmasq.leases", "/var/lib/misc/dnsmasq.leases"),
            (f"{lab_dir}/state/dhcp-hosts", "/var/lib/hotspot-dhcp"),
            (f"{lab_dir}/state", "/var/lib/hotspot"),
            (f"{lab_dir}/log", "/var/log/hotspot"),
        ):
            text = text.replace(f'"{old}"', f'"{new}"')
        if any(lab_dir in line for line in text.splitlines() if not line.startswith("#")):
            raise ValueError(f"the lab config still names {lab_dir}: {text}")
        # written in place: the file keeps the mode and owner postinst gave it (0640 root:hotspot)
        (self.root / "etc/hotspot/hotspot.toml").write_text(text)

    def systemctl(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("systemctl", *argv, check=check, timeout=120)

    def service_pid(self, unit: str) -> int | None:
        """The main PID the stand-in recorded for ``unit``, if it runs in the router's namespace."""
        try:
            pid = int((self.root / "run/lab-units" / f"{unit}.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if _in_netns(pid, self.ns) else None

    def unit_logs(self, lines: int = 15) -> str:
        """The last lines of each unit's output and the stand-in's calls (for failure messages)."""
        out = []
        for path in sorted(
            [*(self.root / "var/log/lab-units").glob("*.log"), self.root / "run/lab-units/calls.log"]
        ):
            if path.exists():
                out.append(
                    f"== {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(out)

    def redis(self) -> redis.Redis:
        """A client on the root's Redis socket (str replies, as the program's)."""
        sock = self.root / "run/redis/redis-server.sock"
        return redis.Redis(unix_socket_path=str(sock), decode_responses=True, socket_timeout=10)

    def start_services(self, timeout: float = 60) -> None:
        """Start Redis, the gateway and the portal as systemd would; wait until they answer."""
        self.systemctl("start", *UNITS)
        r = self.redis()
        _wait(lambda: _quiet(lambda: r.exists(keys.GATEWAY_HEARTBEAT)), timeout, "the gateway's heartbeat")
        _wait(self.portal_ok, timeout, "the portal's /healthz")

    def portal_ok(self) -> bool:
        out = subprocess.run(
            ["ip", "netns", "exec", self.ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2",
             f"http://{LAN_ROUTER}:8080/healthz"], capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        return out.stdout.strip() == "200"

    def metrics_version(self) -> str | None:
        """The version the running gateway reports on /metrics (``gateway_info``)."""
        out = subprocess.run(
            ["ip", "netns", "exec", self.ns, "curl", "-s", "-m", "2", "http://127.0.0.1:9110/metrics"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        found = re.search(r'^\w*gateway_info\{[^}]*version="([^"]+)"', out.stdout, flags=re.M)
        return found.group(1) if found else None

    def stop_services(self) -> None:
        """Stop the services through the stand-in; then kill by PID whatever of them is left."""
        with contextlib.suppress(subprocess.SubprocessError, AssertionError):
            self.systemctl("stop", *reversed(UNITS), check=False)
        for pidfile in (self.root / "run/lab-units").glob("*.pid"):
            unit = pidfile.name.removesuffix(".pid")
            pid = self.service_pid(unit)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)  # the service's own session (unitctl setsid)
                _wait(lambda pid=pid: not pid_alive(pid), 5, f"{unit} to exit", fail=False)

    def destroy(self) -> None:
        """Stop the services and delete the root."""
        self.stop_services()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the session log --------------------------------------------------------------------

    def session_records(self) -> list[dict]:
        """Every complete line of the root's session-log files, in file order."""
        records = []
        for path in sorted((self.root / "var/log/hotspot").glob("sessions-*.jsonl")):
            for line in path.read_text().splitlines(keepends=True):
                if line.endswith("\n"):
                    records.append(json.loads(line))
        return records


def _in_netns(pid: int, ns: str) -> bool:
    try:
        same = os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(netns.NETNS_DIR / ns).st_ino
        return same and pid_alive(pid)
    except (FileNotFoundError, PermissionError):
        return False


def _quiet(check):
    try:
        return check()
    except redis.RedisError:
        return False


def _wait(check, timeout: float, what: str, *, fail: bool = True) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            if fail:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
            return False
        time.sleep(0.1)
    return True


# -- steady traffic from the phones, counted at the lab's internet ---------------------------

_COUNT = """
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(0.2); counts = {}; end = None; limit = time.monotonic() + float(sys.argv[2])
print("ready", flush=True)
while time.monotonic() < limit and (end is None or time.monotonic() < end):
    try:
        data, _ = s.recvfrom(2048)
    except TimeoutError:
        continue
    label = data.decode(errors="replace").split(":", 1)[0]
    if label == "__end__":
        end = time.monotonic() + 1.0  # what is still in flight
    else:
        counts[label] = counts.get(label, 0) + 1
print(json.dumps(counts))
"""

_SEND = """
import signal, socket, sys, time
dst, port, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
every, limit = float(sys.argv[4]), float(sys.argv[5])
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
print("ready", flush=True)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sent = 0; deadline = time.monotonic() + limit
while not stop and time.monotonic() < deadline:
    try:
        s.sendto(f"{label}:{sent}".encode(), (dst, port)); sent += 1
    except OSError:
        pass
    time.sleep(every)
print(sent, flush=True)
"""


@dataclass
class Streams:
    """What :func:`udp_streams` counted: datagrams sent and received per phone label."""

    sent: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)

    def lost(self, label: str) -> int:
        return self.sent.get(label, 0) - self.received.get(label, 0)


@contextlib.contextmanager
def udp_streams(lab: Lab, phones: list[int], *, port: int = 9994, every: float = 0.02,
                limit: float = 600.0) -> Iterator[Streams]:  # fmt: skip
    """Phones send a datagram every ``every`` s to a listener on the lab's internet while the
    block runs (at most ``limit`` s); then the counts are in the yielded :class:`Streams`.

    Each datagram carries its phone's label (``phone<i>``): the router masquerades sources.
    """
    result = Streams()
    listener = subprocess.Popen(
        ["ip", "netns", "exec", lab.spec.up, sys.executable, "-c", _COUNT, str(port), str(limit + 30)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    senders: dict[str, subprocess.Popen] = {}
    try:
        listener.stdout.readline()  # type: ignore[union-attr]  # "ready"
        for i in phones:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", lab.spec.client(i), sys.executable, "-c", _SEND, UPSTREAM_IP,
                 str(port), f"phone{i}", str(every), str(limit)], stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            senders[f"phone{i}"] = proc
            proc.stdout.readline()  # type: ignore[union-attr]  # "ready"
        time.sleep(1.0)  # a steady stream before the block starts
        yield result
        time.sleep(1.0)  # and after it
        for label, proc in senders.items():
            proc.send_signal(signal.SIGTERM)
            result.sent[label] = int(proc.communicate(timeout=10)[0].strip() or 0)
        subprocess.run(
            ["ip", "netns", "exec", lab.spec.up, sys.executable, "-c",
             "import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
             ".sendto(b'__end__', ('127.0.0.1', int(sys.argv[1])))", str(port)],
            check=True, timeout=10,
        )  # fmt: skip
        result.received = json.loads(listener.communicate(timeout=15)[0])
    finally:
        for proc in (listener, *senders.values()):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
