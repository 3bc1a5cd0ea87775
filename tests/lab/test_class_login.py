"""A class logging in at once (issue 16): the gateway lets the logins through in one batch.

Made-up devices in one phone (``gateway.lab.fakes``) post their voucher codes at the same
moment (``bench/_class_login.py``, the benchmark's own client). The gateway is paused
(SIGSTOP) until their ``authorize`` commands are queued, as it would be while busy with
something else, so they arrive together; it must then log one ``commands_batch`` with all
of them, answer each login, and every device must reach the internet. No timing is
asserted (``bench.portal_load`` measures it: docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gateway.lab.fakes import add_fakes, remove_fakes
from gateway.model import keys
from gateway.model.sessions import session_for_mac
from gateway.model.vouchers import issue_batch

pytestmark = pytest.mark.lab

BENCH = Path(__file__).resolve().parents[2] / "bench"
CLASS = 16
PAUSE_AT_MOST = 1.0  # seconds the gateway stays paused after the first command (ack_timeout is 2 s)


def _log_lines(path: Path, offset: int) -> list[dict]:
    with path.open("rb") as f:
        f.seek(offset)
        out = []
        for raw in f.read().splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
    return out


def _queued_authorize(r, after: str) -> int:
    return sum(fields.get("op") == "authorize" for _id, fields in r.xrange(keys.COMMANDS, f"({after}", "+"))


def test_a_class_logging_in_at_once_is_let_through_in_one_batch(lab, gw):
    ns = lab.spec.client(3)
    config = lab.config()
    vouchers = issue_batch(gw, config.plans["harian"], CLASS, now=time.time(), issued_by="test")
    fakes = add_fakes(lab, ns, CLASS, first_ip=160, prefix="cl", mac_byte=0xC2)
    log_path = lab.log_dir / "gateway.log"
    offset = log_path.stat().st_size
    last = gw.xrevrange(keys.COMMANDS, count=1)
    after = last[0][0] if last else "0-0"
    pid = lab.pid("gateway")
    assert pid is not None
    argv = [lab.python, str(BENCH / "_class_login.py"), "--portal", config.portal.url]
    for fake, voucher in zip(fakes, vouchers, strict=True):
        argv += ["--device", f"{fake.ip}={voucher.code}"]
    client = None
    try:
        os.kill(pid, signal.SIGSTOP)
        try:
            client = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE, text=True)
            deadline, first_seen, queued = time.monotonic() + 60, None, 0
            while time.monotonic() < deadline and client.poll() is None:
                queued = _queued_authorize(gw, after)
                if queued and first_seen is None:
                    first_seen = time.monotonic()
                if queued >= CLASS or (first_seen and time.monotonic() - first_seen > PAUSE_AT_MOST):
                    break
                time.sleep(0.02)
        finally:
            os.kill(pid, signal.SIGCONT)
        out, _ = client.communicate(timeout=90)
        devices = json.loads(out.strip().splitlines()[-1])["devices"]
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        remove_fakes(lab, ns, fakes)

    # every device was answered "you are online" (303) and then reached the internet
    assert len(devices) == CLASS
    assert [d for d in devices if d["status"] != 303] == []
    assert [d for d in devices if d["online_ms"] is None] == []
    for fake in fakes:
        session = session_for_mac(gw, fake.mac)
        assert session is not None and session.state == "online" and session.ip == fake.ip

    # the gateway read the queued logins as one batch and applied them together
    lines = _log_lines(log_path, offset)
    batches = [line for line in lines if line.get("event") == "commands_batch"]
    assert batches, "no commands_batch line: the logins were not read together"
    biggest = max(b["ops"].get("authorize", 0) for b in batches)
    print(f"queued {queued} when the gateway resumed; batches {[b['ops'] for b in batches]}")
    # a gateway paused inside XREAD BLOCK has been handed the first command alone: the rest come next
    assert biggest >= max(2, queued - 1), (queued, [b["ops"] for b in batches])
    done = [line for line in lines if line.get("event") == "command_done" and line.get("op") == "authorize"]
    assert max(d.get("batch", 1) for d in done) == biggest
    assert all(d["ok"] for d in done)
    failures = ("login_batch_refused", "command_batch_failed", "login_failed", "login_refused")
    assert not [line for line in lines if line.get("event") in failures]
