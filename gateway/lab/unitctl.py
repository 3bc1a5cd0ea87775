#!/usr/bin/python3
"""The lab's stand-in for ``systemctl`` in a router root (a chroot with no systemd running).

A lab router root (:mod:`gateway.lab.routeroot`) is a Debian root made by mmdebstrap where the
package is installed with dpkg, in a lab router's network namespace. systemd does not run
there, so this file is copied in as ``/usr/local/sbin/systemctl`` and ``/run/systemd/system``
is created: the maintainer scripts then take their systemd branch for real (debhelper's
snippets, ``deb-systemd-invoke try-restart`` in postinst) and this program plays the service
manager's part for the units they name. It is deliberately small and says what it is not:

- it starts a service's first ``ExecStart=`` with the unit's ``Environment=``, ``User=``,
  ``Group=``, ``SupplementaryGroups=``, ``AmbientCapabilities=``, ``CapabilityBoundingSet=``,
  ``NoNewPrivileges=``, ``UMask=`` and ``RuntimeDirectory=`` (through util-linux ``setpriv``), in
  a private mount namespace with ``/proc`` mounted (``ip netns exec`` gives the router's
  network namespace); its output goes to ``/var/log/lab-units/<unit>.log``;
- the sandboxing lines (``ProtectSystem=``, ``SystemCallFilter=``...), ``Restart=``,
  ``Type=notify`` readiness and dependencies are not applied;
- ``stop`` sends SIGTERM to the main process, waits ``TimeoutStopSec=`` (default 90 s), then
  SIGKILLs what is left of its process group (``KillMode=mixed``); ``reload`` runs each
  ``ExecReload=`` line with ``$MAINPID``; timers and unknown verbs on known units are accepted
  and do nothing (the upkeep timer is not the lab's business);
- state: ``/run/lab-units/<unit>.pid``.

Standard library only: it runs under the root's own ``/usr/bin/python3``. Every call is
appended to ``/run/lab-units/calls.log`` so a test can show what the scripts asked for.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path

INSTALLED = Path("/usr/local/sbin/systemctl")  # where gateway.lab.routeroot puts it in the root
STATE = Path("/run/lab-units")
LOGS = Path("/var/log/lab-units")
UNIT_DIRS = (Path("/etc/systemd/system"), Path("/lib/systemd/system"), Path("/usr/lib/systemd/system"))
OPTIONS_WITH_VALUE = {"-t", "--type", "-p", "--property", "--state", "-H", "--host", "-M", "--machine"}


def find_unit(name: str) -> Path | None:
    """Return the unit file for ``name`` (``.service`` added if it has no suffix)."""
    if "." not in name:
        name += ".service"
    for folder in UNIT_DIRS:
        if (folder / name).is_file():
            return folder / name
    return None


def parse_service(path: Path) -> dict[str, list[str]]:
    """Return the ``[Service]`` section as key -> values (repeated keys kept in order)."""
    section, values = "", {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def last(values: dict[str, list[str]], key: str, default: str = "") -> str:
    return values.get(key, [default])[-1]


def command_line(line: str) -> list[str]:
    """An ``Exec*=`` line without its prefixes (``-``, ``@``, ``+``, ``!``), split like a shell."""
    return shlex.split(line.lstrip("-@+!:"))


def pidfile(unit: str) -> Path:
    return STATE / f"{unit}.pid"


def main_pid(unit: str) -> int | None:
    """Return the unit's main PID if it runs."""
    try:
        pid = int(pidfile(unit).read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def caps(spec: str) -> str:
    """``CAP_NET_ADMIN CAP_X`` -> setpriv's ``+net_admin,+x`` ("" if none)."""
    return ",".join("+" + c.lower().removeprefix("cap_") for c in spec.split())


def start(unit: str) -> int:
    if main_pid(unit):
        return 0
    path = find_unit(unit)
    assert path is not None  # noqa: S101 (checked by the caller)
    service = parse_service(path)
    if "ExecStart" not in service:
        return 0  # a timer's service or an alias: nothing to run here
    argv = command_line(service["ExecStart"][0])
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    for line in service.get("Environment", []):
        for item in shlex.split(line):
            key, _, value = item.partition("=")
            env[key] = value
    user, group = last(service, "User", "root"), last(service, "Group", "")
    groups = " ".join(service.get("SupplementaryGroups", [])).split()
    wrap = ["setpriv", f"--reuid={user}", f"--regid={group or user}"]
    wrap += [f"--groups={','.join(groups)}"] if groups else ["--clear-groups"]
    ambient = caps(" ".join(service.get("AmbientCapabilities", [])))
    if ambient:
        wrap += [f"--inh-caps={ambient}", f"--ambient-caps={ambient}"]
    if "CapabilityBoundingSet" in service:
        bounding = caps(last(service, "CapabilityBoundingSet"))
        wrap += ["--bounding-set=-all" + ("," + bounding if bounding else "")]
    if last(service, "NoNewPrivileges") in ("yes", "true", "1"):
        wrap += ["--no-new-privs"]
    if user == "root" and not groups:
        wrap = []
    for name in " ".join(service.get("RuntimeDirectory", [])).split():
        folder = Path("/run") / name
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(int(last(service, "RuntimeDirectoryMode", "0755"), 8))
        shutil.chown(folder, user, group or user)
    umask = int(last(service, "UMask", "0022"), 8)
    mainpid_file = pidfile(unit)
    LOGS.mkdir(parents=True, exist_ok=True)
    # /proc in a mount namespace of the service's own: it shows the router's network namespace
    # and vanishes with the service. "unchanged": in a chroot / is no mount point to make
    # private, and `ip netns exec` already made every mount a slave (nothing propagates back)
    full = ["unshare", "--mount", "--propagation", "unchanged", "--", "sh", "-c",
            'mount -t proc proc /proc && exec "$@"', "sh", *wrap, *argv]  # fmt: skip
    pid = os.fork()
    if pid == 0:  # the child: a session of its own, output to the unit's log, then exec
        try:
            os.setsid()
            os.umask(umask)
            os.chdir("/")
            log = os.open(LOGS / f"{unit}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.closerange(3, 65536)
            os.execvpe(full[0], full, env)  # noqa: S606 (the unit's own command line, as systemd runs it)
        finally:
            os._exit(127)
    mainpid_file.write_text(f"{pid}\n")
    time.sleep(0.2)
    waited, status = os.waitpid(pid, os.WNOHANG)
    if waited:  # it died at once: systemd would say the unit failed
        mainpid_file.unlink(missing_ok=True)
        print(f"{unit}: the service exited at once (status {status}); see {LOGS / (unit + '.log')}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def stop(unit: str) -> int:
    pid = main_pid(unit)
    if pid is None:
        pidfile(unit).unlink(missing_ok=True)
        return 0
    path = find_unit(unit)
    timeout = float(last(parse_service(path), "TimeoutStopSec", "90").rstrip("s") or 90) if path else 90.0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)  # what is left of the group (KillMode=mixed)
    except (ProcessLookupError, PermissionError):
        pass
    while _alive(pid):
        time.sleep(0.05)
    pidfile(unit).unlink(missing_ok=True)
    return 0


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # our child when started by this same call
        if waited:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent to reap it has exited (without /proc: alive)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def reload(unit: str) -> int:
    pid = main_pid(unit)
    if pid is None:
        print(f"{unit} is not active, cannot reload.", file=sys.stderr)
        return 7
    path = find_unit(unit)
    for line in parse_service(path).get("ExecReload", []) if path else []:
        argv = [arg.replace("$MAINPID", str(pid)) for arg in command_line(line)]
        rc = os.spawnvp(os.P_WAIT, argv[0], argv)  # noqa: S606 (the unit's ExecReload=, as systemd runs it)
        if rc != 0:
            print(f"{unit}: reload failed: {' '.join(argv)} exited with {rc}", file=sys.stderr)
            return 1
    return 0


def is_enabled(unit: str) -> int:
    wanted = list(Path("/etc/systemd/system").glob(f"*.wants/{unit}"))
    print("enabled" if wanted else "disabled")
    return 0 if wanted else 1


def main(argv: list[str]) -> int:
    if Path(__file__).resolve() != INSTALLED:
        print(f"unitctl is the lab's stand-in for systemctl; it runs only as a router root's {INSTALLED}",
              file=sys.stderr)  # fmt: skip
        return 2
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "calls.log").open("a") as calls:
        calls.write(" ".join(argv) + "\n")
    words, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in OPTIONS_WITH_VALUE:
            skip = True
        elif arg != "--" and not arg.startswith("-"):
            words.append(arg)
    if not words:
        return 0
    verb, units = words[0], words[1:]
    if verb in ("daemon-reload", "daemon-reexec", "reset-failed", "enable", "disable", "mask", "unmask",
                "preset", "list-units", "--version"):  # fmt: skip
        return 0  # unit symlinks are deb-systemd-helper's business; nothing to reload here
    rc = 0
    for unit in units:
        if "." not in unit:
            unit += ".service"
        if find_unit(unit) is None:
            print(f"Unit {unit} not found.", file=sys.stderr)
            rc = max(rc, 5 if verb != "is-active" else 4)
            continue
        if verb == "is-enabled":
            rc = max(rc, is_enabled(unit))
            continue
        if not unit.endswith(".service"):
            if verb == "is-active":
                rc = max(rc, 3)
            continue  # timers: not run in the lab
        if verb == "start":
            rc = max(rc, start(unit))
        elif verb == "stop":
            rc = max(rc, stop(unit))
        elif verb == "restart":
            stop(unit)
            rc = max(rc, start(unit))
        elif verb in ("try-restart", "condrestart"):
            if main_pid(unit):
                stop(unit)
                rc = max(rc, start(unit))
        elif verb == "reload":
            rc = max(rc, reload(unit))
        elif verb in ("reload-or-restart", "try-reload-or-restart"):
            if main_pid(unit):
                rc = max(rc, reload(unit))
            elif verb == "reload-or-restart":
                rc = max(rc, start(unit))
        elif verb == "is-active":
            active = main_pid(unit) is not None
            if "--quiet" not in argv and "-q" not in argv:
                print("active" if active else "inactive")
            rc = max(rc, 0 if active else 3)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
