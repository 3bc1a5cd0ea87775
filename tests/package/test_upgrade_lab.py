"""`dpkg -i` N+1 on a lab router with phones online: nobody cut off, nobody let in, nothing lost.

The package is installed for real in a Debian 12 root (mmdebstrap) whose every command runs
in the session lab's router namespace (:mod:`gateway.lab.routeroot`): version N is installed
with dpkg, its Redis, gateway and portal are started from ``/opt/perpuseru-hotspot`` of that
root (as their units say: users, CAP_NET_ADMIN), phones log in, and ``dpkg -i`` N+1 runs while
the phones send a steady UDP stream (one datagram every 20 ms) to the lab's internet, counted
there per phone. N and N+1 are the same tree built twice, N+1 with ``make deb
DEB_VERSION=<N>+upgrade1``.

What plays systemd: nothing runs systemd in a chroot. The root gets ``/run/systemd/system``
and :mod:`gateway.lab.unitctl` as its ``systemctl``, so the package's maintainer scripts run
their systemd branch unchanged (postinst's ``deb-systemd-invoke try-restart
hotspot-gateway.service hotspot-portal.service``, the configure step's ``systemctl
try-restart redis-server.service``) and the stand-in stops (SIGTERM, as systemd does) and
starts the units' ``ExecStart=``. Not exercised: systemd's sandboxing of the units
(``tests/package/test_deb.py`` runs ``systemd-analyze verify`` on them) and ``Restart=``.

Faults: a ``dpkg -i`` killed with SIGKILL half-way through unpacking, and a package whose
post-install check fails (a module that cannot be imported). Each keeps the router serving
(the old daemons run on), says what happened, loses no session record, and is recovered; the
last test pushes the failing package through the Ansible role's package tasks, whose rescue
rolls it back (a test-only connection runs them in the namespace and the root).

The lab's own gateway and portal (the checkout's) are stopped for the module and started again
after it; the lab's Redis, DHCP server, phones and internet are shared.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.lab.probe import admit, online_from, wait_for
from gateway.lab.routeroot import RouterRoot, repack, udp_streams
from gateway.model import commands, keys
from gateway.model.sessions import end_session, online_sessions

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.timeout(1800),  # two package builds and a Debian root on a shared box
    pytest.mark.skipif(os.geteuid() != 0, reason="dpkg in a chroot and the lab need root"),
    pytest.mark.skipif(
        shutil.which("dpkg-buildpackage") is None or shutil.which("dh") is None,
        reason="dpkg-buildpackage or debhelper missing (apt-get install debhelper dpkg-dev fakeroot)",
    ),
]

ONLINE, OFFLINE = [1, 2], 3
GW, PORTAL = "hotspot-gateway.service", "hotspot-portal.service"


@pytest.fixture(scope="module")
def router(lab, built, built_next, debian_root_tar, tmp_path_factory):
    """The lab router running version N from the Debian root; yields (root, N deb, N+1 deb) with
    the .deb paths inside the root."""
    work = tmp_path_factory.mktemp("router-root")
    root = RouterRoot.unpack(debian_root_tar, work / "root", lab.spec.gw)
    lab.stop("portal")
    lab.stop("gateway")
    try:
        n, n1 = root.copy_in(built["deb"]), root.copy_in(built_next)
        root.run("dpkg", "-i", n, check=True)
        root.write_config(lab)
        root.run("hotspotctl", "config", "check", check=True)
        root.start_services()
        assert root.metrics_version() == built_version(built["deb"])
        yield root, n, n1
    finally:
        root.destroy()
        lab.start("gateway")
        lab.start("portal")


def built_version(deb: Path | str) -> str:
    return Path(deb).name.split("_")[1]


def log_in(root: RouterRoot, lab, phones) -> dict[int, str]:
    """Everyone out, then ``phones`` logged in; return their session ids."""
    r = root.redis()
    for session in online_sessions(r):
        end_session(r, session.sid, "kicked", time.time())
    sids = {}
    for i in phones:
        session, ack = admit(r, lab, i)
        assert ack and ack["ok"], ack
        sids[i] = session.sid
    for i in phones:
        assert online_from(lab, i), f"phone {i} should be online"
    assert not online_from(lab, OFFLINE)
    return sids


def assert_served(lab, streams, what: str) -> None:
    """Zero datagrams lost for the online phones, zero through for the one not logged in."""
    for i in ONLINE:
        label = f"phone{i}"
        assert streams.sent[label] > 100, streams
        assert streams.lost(label) == 0, f"{what}: phone {i} lost {streams.lost(label)} datagrams: {streams}"
    assert streams.received.get(f"phone{OFFLINE}", 0) == 0, f"{what}: phone {OFFLINE} got through: {streams}"


def assert_log_exact(root: RouterRoot) -> None:
    """The session-log files hold each hs:events entry exactly once, in order (none lost, none doubled)."""
    r = root.redis()
    wait_for(lambda: _log_caught_up(root, r), timeout=20, what="the session log to catch up with hs:events")
    ids = [rec["id"] for rec in root.session_records()]
    stream = [entry_id for entry_id, _ in r.xrange(keys.EVENTS)]
    assert ids == stream, f"session log {ids} != stream {stream}"


def _log_caught_up(root, r) -> bool:
    last = r.xrevrange(keys.EVENTS, count=1)
    records = root.session_records()
    return bool(last) and bool(records) and records[-1]["id"] == last[0][0]


def converged(root: RouterRoot, lab, online, offline) -> None:
    r = root.redis()
    wait_for(lambda: (commands.request(r, "doctor", 5) or {}).get("report", {}).get("ok"), timeout=20,
             what="doctor to find no difference")  # fmt: skip
    for i in online:
        assert online_from(lab, i), f"phone {i} should be online"
    for i in offline:
        assert not online_from(lab, i), f"phone {i} should be behind the portal"


def test_upgrade_with_phones_online_cuts_nobody_off_and_lets_nobody_in(router, lab, built):
    root, _n, n1 = router
    sids = log_in(root, lab, ONLINE)
    before = {unit: root.service_pid(unit) for unit in (GW, PORTAL)}
    with udp_streams(lab, [*ONLINE, OFFLINE]) as streams:
        started = time.monotonic()
        upgrade = root.run("dpkg", "-i", n1)
        took = time.monotonic() - started
    assert upgrade.returncode == 0, upgrade.stdout[-3000:] + upgrade.stderr[-3000:]
    version = built_version(n1)
    assert f"Unpacking perpuseru-hotspot ({version}) over ({built_version(built['deb'])})" in upgrade.stdout
    assert f"perpuseru-hotspot {version}: self-check OK" in upgrade.stdout
    assert_served(lab, streams, f"during dpkg -i N+1 ({took:.0f} s)")
    # postinst restarted both (deb-systemd-invoke try-restart -> the stand-in's SIGTERM + start)
    calls = (root.root / "run/lab-units/calls.log").read_text()
    assert f"try-restart {GW} {PORTAL}" in calls, calls
    after = {unit: root.service_pid(unit) for unit in (GW, PORTAL)}
    assert all(after.values()) and all(after[u] != before[u] for u in after), (
        f"{before} {after}\n{root.unit_logs()}"
    )
    assert root.dpkg_status() == f"install ok installed {built_version(n1)}"
    wait_for(
        lambda: root.metrics_version() == built_version(n1), timeout=30, what="the new gateway on /metrics"
    )
    wait_for(root.portal_ok, timeout=30, what="the new portal")
    # the same sessions, still online; the one not logged in still behind the portal
    assert {s.sid for s in online_sessions(root.redis())} == set(sids.values())
    converged(root, lab, ONLINE, [OFFLINE])
    # a login after the upgrade works, and ends are logged once
    _, ack = admit(root.redis(), lab, 4)
    assert ack and ack["ok"]
    log_in(root, lab, [])
    assert_log_exact(root)


def test_dpkg_killed_mid_install_keeps_serving_and_recovers(router, lab):
    root, n, n1 = router
    sids = log_in(root, lab, ONLINE)
    gateway = root.service_pid(GW)
    with udp_streams(lab, [*ONLINE, OFFLINE]) as streams:
        proc = root.popen("dpkg", "-i", n)  # a downgrade to N, killed half-way
        try:
            wait_for(lambda: _unpacking(root), timeout=60, every=0.05, what="dpkg to start unpacking")
            time.sleep(0.3)
        finally:
            os.killpg(
                proc.pid, signal.SIGKILL
            )  # dpkg and its helpers, like a lost terminal or the OOM killer
            proc.wait(30)
        time.sleep(2)  # the router serves on, killed dpkg or not
    assert_served(lab, streams, "while dpkg was killed half-way")
    status = root.dpkg_status()
    assert "half-installed" in status or "half-configured" in status or "unpacked" in status, status
    assert root.service_pid(GW) == gateway, "the running gateway was not touched"
    assert {s.sid for s in online_sessions(root.redis())} == set(sids.values())
    # what the admin sees and runs after an interrupted dpkg: --audit names the package, and
    # --configure -a cannot finish an unpack that was cut (dpkg wants the .deb again)
    audit = root.run("dpkg", "--audit")
    assert "perpuseru-hotspot" in audit.stdout, audit.stdout
    configure = root.run("dpkg", "--configure", "-a")
    print(status, audit.stdout, configure.stdout, configure.stderr, sep="\n")
    with udp_streams(lab, [*ONLINE, OFFLINE]) as streams:
        root.run("dpkg", "-i", n1, check=True)
    assert_served(lab, streams, "while the interrupted install was re-run")
    assert root.dpkg_status() == f"install ok installed {built_version(n1)}"
    wait_for(lambda: root.metrics_version() == built_version(n1), timeout=30, what="the gateway on /metrics")
    converged(root, lab, ONLINE, [OFFLINE])
    log_in(root, lab, [])
    assert_log_exact(root)


def _unpacking(root: RouterRoot) -> bool:
    """Whether dpkg has begun to put the new files in place (``*.dpkg-new`` beside the old ones)."""
    for _folder, _dirs, files in os.walk(
        root.root / "opt/perpuseru-hotspot"
    ):  # errors ignored: dpkg is at work
        if any(name.endswith(".dpkg-new") for name in files):
            return True
    return False


def test_a_package_failing_its_post_install_check_keeps_the_old_daemons(router, lab, tmp_path):
    root, _n, n1 = router
    broken = repack(
        root.root / n1.lstrip("/"), tmp_path / "perpuseru-hotspot_broken.deb", tmp_path,
        version=f"{built_version(n1)}.1", break_module="gateway/shaping/book.py",
    )  # fmt: skip
    inside = root.copy_in(broken)
    sids = log_in(root, lab, ONLINE)
    before = {unit: root.service_pid(unit) for unit in (GW, PORTAL)}
    with udp_streams(lab, [*ONLINE, OFFLINE]) as streams:
        failed = root.run("dpkg", "-i", inside)
    assert failed.returncode != 0
    assert "self-check: module gateway.shaping.book: ImportError: a broken build" in failed.stderr, (
        failed.stderr
    )
    assert "post-install check failed: the gateway and portal were NOT restarted" in failed.stderr
    assert_served(lab, streams, "during the failed upgrade")
    assert {unit: root.service_pid(unit) for unit in (GW, PORTAL)} == before, "nothing was restarted"
    assert root.metrics_version() == built_version(n1), "the old gateway still runs"
    assert "half-configured" in root.dpkg_status()
    # the rollback: the previous version's package again (what the Ansible role does by itself)
    with udp_streams(lab, [*ONLINE, OFFLINE]) as streams:
        back = root.run("dpkg", "-i", n1)
    assert back.returncode == 0, back.stdout[-3000:] + back.stderr[-3000:]
    assert_served(lab, streams, "during the rollback")
    assert root.dpkg_status() == f"install ok installed {built_version(n1)}"
    assert root.run("hotspotctl", "self-check").returncode == 0
    assert {s.sid for s in online_sessions(root.redis())} == set(sids.values())
    converged(root, lab, ONLINE, [OFFLINE])
    log_in(root, lab, [])
    assert_log_exact(root)


ANSIBLE = Path(__file__).resolve().parents[2] / "deploy" / "ansible"
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
PLUGINS = Path(__file__).resolve().parents[1] / "deploy" / "connection_plugins"  # the routeroot connection


@pytest.mark.skipif(not PLAYBOOK.exists(), reason="ansible-core missing (pip install -e '.[test]')")
def test_the_ansible_role_rolls_a_failing_package_back(router, lab, tmp_path):
    """The role's package tasks against the router root (tests/deploy/connection_plugins/routeroot.py:
    Ansible's local connection inside the namespace and the root), pushing a package that fails its
    post-install check: the library fails with the reason, the previous version is back, nobody
    was cut off or let in."""
    root, n, n1 = router
    previous = root.dpkg_status().split()[-1]  # what the tests before left installed (N+1, or N alone)
    installed = n1 if previous == built_version(n1) else n
    broken = repack(
        root.root / n1.lstrip("/"), tmp_path / f"perpuseru-hotspot_{previous}.2_amd64.deb",
        tmp_path / "repack", version=f"{previous}.2", break_module="gateway/firewall/doctor.py",
    )  # fmt: skip
    # the previous .deb where the role keeps the ones it pushed
    cache = root.root / "var/cache/perpuseru-hotspot"
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root.root / installed.lstrip("/"), cache / Path(installed).name)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    libraries:\n      hosts:\n        lab-router:\n"
        "          ansible_connection: routeroot\n          ansible_python_interpreter: /usr/bin/python3\n"
        "          ansible_become: false\n"
    )
    sids = log_in(root, lab, ONLINE)
    env = {
        **os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_CONNECTION_PLUGINS": str(PLUGINS),
        "HOTSPOT_ROUTER_ROOT": str(root.root), "HOTSPOT_ROUTER_NS": root.ns,
    }  # fmt: skip
    with udp_streams(lab, [*ONLINE, OFFLINE]) as streams:
        run = subprocess.run(
            [str(PLAYBOOK), "-i", str(inventory), "site.yml", "--tags", "package",
             "-e", json.dumps({"hotspot_deb": str(broken), "hotspot_serial": [1]})],
            cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-4000:]
    assert (
        "the new package failed to install" in out and f"rolled back to {previous}, still serving" in out
    ), out[-4000:]
    assert_served(lab, streams, "during the rollout of a failing package and its rollback")
    assert root.dpkg_status() == f"install ok installed {previous}"
    wait_for(lambda: root.metrics_version() == previous, timeout=30, what="the gateway on /metrics")
    assert {s.sid for s in online_sessions(root.redis())} == set(sids.values())
    converged(root, lab, ONLINE, [OFFLINE])
    log_in(root, lab, [])
    assert_log_exact(root)
