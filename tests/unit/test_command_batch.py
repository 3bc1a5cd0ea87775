"""Commands that arrive together: runs, one firewall transaction for many logins, one reply each.

No kernel here: the firewall is a recording stand-in for libnftables, the other components
are small fakes; Redis is real. The lab test ``tests/lab/test_class_login.py`` logs a class
in through the real gateway.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from structlog.testing import capture_logs

from gateway import config as config_mod
from gateway.daemon.batch import runs
from gateway.daemon.loop import Daemon
from gateway.daemon.reconcile import Reconciler
from gateway.firewall.enforce import NftEnforcer
from gateway.firewall.nft import ApplyError
from gateway.firewall.plan import Element, Want, element_timeout, login_elements, session_elements
from gateway.model import commands, keys
from gateway.model.commands import Command
from gateway.model.sessions import end_session, get_session, new_session, start_session
from gateway.model.store import connect

NOW = 1_800_000_000.0
CONFIG = """
[library]
id = "lab"
name = "Lab"

[network]
lan_interface = "lan0"
wan_interface = "wan0"
lan_address = "10.42.0.1/24"

[uplink]
down = "10mbit"
up = "10mbit"
"""


def phone(n: int, now: float = NOW, minutes: int = 60):
    return new_session(mac=f"02:00:00:00:0c:{n:02x}", ip=f"10.42.0.{100 + n}", kind="admin", plan="",
                       now=now, expires_at=now + minutes * 60, down=1, up=1)  # fmt: skip


@pytest.fixture
def config():
    return config_mod.loads(CONFIG, "hotspot.toml")


class RecordingNft:
    """Stands in for :class:`gateway.firewall.nft.Nft`: records each transaction, refuses some."""

    def __init__(self, refuse: str = ""):
        self.batches: list[str] = []
        self.refuse = refuse  # a transaction naming this text fails as a whole, as nftables does

    def apply(self, batch: str, op: str = "apply") -> None:
        if self.refuse and self.refuse in batch:
            raise ApplyError(op, f"Error: Could not process rule: {self.refuse}")
        self.batches.append(batch)


# -- runs ---------------------------------------------------------------------------------


def _cmd(op: str, n: int) -> Command:
    return Command(id=f"r{n}", op=op, fields={"sid": f"s{n}"}, stream_id=f"{n}-0")


def test_consecutive_authorize_commands_form_one_run_and_others_keep_their_place():
    ops = ["authorize", "authorize", "authorize", "deauthorize", "authorize", "ping", "ping", "authorize"]
    batch = [_cmd(op, n) for n, op in enumerate(ops)]
    assert [[c.stream_id for c in run] for run in runs(batch)] == [
        ["0-0", "1-0", "2-0"], ["3-0"], ["4-0"], ["5-0"], ["6-0"], ["7-0"],
    ]  # fmt: skip
    assert runs([]) == []


def test_a_move_comes_after_the_other_logins_of_its_stretch_alone():
    batch = [_cmd("authorize", 0), _cmd("authorize", 1), _cmd("authorize", 2), _cmd("authorize", 3),
             _cmd("ping", 4), _cmd("authorize", 5)]  # fmt: skip
    batch[1] = Command(id="r1", op="authorize", fields={"sid": "s1", "ip": "10.42.0.9"}, stream_id="1-0")
    batch[5] = Command(id="r5", op="authorize", fields={"sid": "s5", "ip": "10.42.0.8"}, stream_id="5-0")
    assert [[c.stream_id for c in run] for run in runs(batch)] == [
        ["0-0", "2-0", "3-0"],
        ["1-0"],
        ["4-0"],
        ["5-0"],
    ]


def test_replies_go_to_each_requester_in_one_round_trip(r):
    ids = [commands.send(r, "authorize", sid=f"s{n}") for n in range(3)]
    commands.reply_many(r, [(ids[2], {"ok": True, "n": 2}), ("", {"ok": True}), (ids[0], {"ok": False})])
    assert 0 < r.ttl(keys.ack(ids[0])) <= commands.REPLY_TTL  # an unread reply does not stay
    assert commands.wait_reply(r, ids[0], 1) == {"ok": False}
    assert commands.wait_reply(r, ids[2], 1) == {"ok": True, "n": 2}
    assert commands.wait_reply(r, ids[1], 0.1) is None


def test_an_applied_login_is_marked_acked_with_its_reply(r):
    """The portal's online page skips asking again; the login itself spends no round trip on it."""
    ids = ["a1", "a2", "a3"]
    commands.reply_many(r, [
        (ids[0], {"op": "authorize", "ok": True, "sid": "s-ok", "expires_at": NOW + 600}),
        (ids[1], {"op": "authorize", "ok": False, "sid": "s-refused", "error": "no"}),
        (ids[2], {"op": "authorize", "ok": True, "sid": "s-late", "expires_at": NOW + 5}),
    ], now=NOW)  # fmt: skip
    assert 590 <= r.ttl(keys.portal_acked("s-ok")) <= 600
    assert not r.exists(keys.portal_acked("s-refused"))
    assert r.ttl(keys.portal_acked("s-late")) == commands.ACKED_MIN  # at least a minute
    assert commands.wait_reply(r, ids[0], 1)["sid"] == "s-ok"


def test_a_request_is_sent_and_waited_for_in_one_round_trip(r, redis_url):
    gateway = connect(redis_url)
    answered: list[Command] = []

    def serve() -> None:
        for command in commands.read_commands(gateway, "0-0", 3000):
            answered.append(command)
            commands.reply_many(gateway, [(command.id, {"ok": True, "sid": command.fields["sid"]})])

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert commands.request(r, "authorize", 3, sid="s1") == {"ok": True, "sid": "s1"}
    finally:
        thread.join(5)
    assert [(c.op, c.fields) for c in answered] == [("authorize", {"sid": "s1"})]
    # nobody answers: None once the timeout is up
    assert commands.request(r, "ping", 0.2) is None


# -- the firewall: one transaction, one by one when it fails -------------------------------


def test_login_elements_keep_order_and_refuse_bad_sessions_alone():
    a, b = phone(1), phone(2)
    bad = replace(phone(3), mac="not-a-mac")
    evil = replace(phone(4), sid='x" ; flush ruleset ; "')
    again = replace(a, ip="10.42.0.150")  # the same session given twice: its last one counts
    wanted, refused = login_elements([a, bad, b, evil, again], NOW)
    assert list(wanted) == [b.sid, a.sid]
    assert [e for e, _ in wanted[a.sid]] == session_elements(again)
    assert {w for pairs in wanted.values() for _, w in pairs} == {
        Want(a.sid, element_timeout(a, NOW)), Want(b.sid, element_timeout(b, NOW)),
    }  # fmt: skip
    assert set(refused) == {bad.sid, evil.sid}


def test_many_logins_are_one_transaction(config):
    nft = RecordingNft()
    enforcer = NftEnforcer(config, nft=nft)
    sessions = [phone(n) for n in range(1, 41)]
    assert enforcer.login_many(sessions, NOW) == {}
    assert len(nft.batches) == 1
    for s in sessions:
        assert f'comment "{s.sid}"' in nft.batches[0]
        for element in session_elements(s):
            assert enforcer.view.elements[element].comment == s.sid


def test_a_refused_transaction_is_retried_one_session_at_a_time(config):
    sessions = [phone(n) for n in range(1, 6)]
    nft = RecordingNft(refuse=sessions[2].ip + " ")  # one element the kernel will not take
    enforcer = NftEnforcer(config, nft=nft)
    bad = replace(phone(9), mac="bad")
    refused = enforcer.login_many([*sessions, bad], NOW)
    assert set(refused) == {sessions[2].sid, bad.sid}
    assert "Could not process" in refused[sessions[2].sid]
    assert len(nft.batches) == 4  # the four good ones, each alone
    assert Element("down4", (sessions[2].ip,)) not in enforcer.view.elements
    assert Element("down4", (sessions[3].ip,)) in enforcer.view.elements


# -- the reconciler: each component once, failures per session ------------------------------


class FakeComponent:
    def __init__(self, name: str, *, many: bool, refuse: set[str] = frozenset(), explode: bool = False):
        self.name = name
        self.calls: list[tuple[str, list[str]]] = []
        self.refuse, self.explode = refuse, explode
        if many:
            self.login_many = self._login_many

    def _login_many(self, sessions, now):
        self.calls.append(("many", [s.sid for s in sessions]))
        if self.explode:
            raise RuntimeError("netlink batch failed")
        return {sid: "refused" for sid in self.refuse}

    def login(self, session, now):
        self.calls.append(("one", [session.sid]))
        if session.sid in self.refuse:
            raise RuntimeError("no")

    def logout(self, session, now):
        pass

    def reconcile(self, sessions, now):
        return {}

    def close(self):
        pass


def test_the_reconciler_gives_each_component_the_batch_and_reports_failures_per_session(config, r):
    a, b, c = phone(1), phone(2), phone(3)
    nft = FakeComponent("nft", many=True, refuse={b.sid})
    tc = FakeComponent("tc", many=True, explode=True)
    dhcp = FakeComponent("dhcp", many=False, refuse={c.sid})
    rec = Reconciler(config, r, nft, [tc, dhcp])  # type: ignore[arg-type]
    failed = rec.login_many([a, b, c, a], NOW)
    assert failed == {a.sid: ["tc"], b.sid: ["nft", "tc"], c.sid: ["tc", "dhcp"]}
    assert nft.calls == [("many", [a.sid, b.sid, c.sid])]
    assert dhcp.calls == [("one", [a.sid]), ("one", [b.sid]), ("one", [c.sid])]
    # one session: the single fast path
    assert rec.login_many([a], NOW) == {a.sid: []}
    assert nft.calls[-1] == ("one", [a.sid])


# -- the daemon: each command checked alone, the good ones let in together -----------------


def test_authorize_many_answers_each_command_and_lets_the_good_ones_in_together(config, r):
    now = time.time()
    good = [start_session(r, phone(n, now), now) for n in range(1, 5)]
    ended = start_session(r, phone(5, now), now)
    end_session(r, ended.sid, "logout", now)
    bad_mac = start_session(r, phone(6, now), now)
    r.hset(keys.session(bad_mac.sid), "mac", "zz:zz")  # a record gone bad in Redis
    refused_by_kernel = start_session(r, phone(7, now), now)
    daemon = Daemon.__new__(Daemon)  # the command path only: no kernel, no loop
    daemon.redis, daemon.next_pass = r, time.monotonic() + 60
    nft = FakeComponent("nft", many=True, refuse={refused_by_kernel.sid})
    daemon.reconciler = Reconciler(config, r, nft, [])  # type: ignore[arg-type]
    daemon.enforcer = nft
    run = [Command(id=f"r{i}", op="authorize", fields={"sid": sid})
           for i, sid in enumerate([good[0].sid, "nope", good[1].sid, ended.sid, bad_mac.sid,
                                    refused_by_kernel.sid, good[2].sid, good[3].sid])]  # fmt: skip
    replies = daemon.handle_run(run)
    assert [reply["ok"] for reply in replies] == [True, False, True, False, False, False, True, True]
    assert replies[1]["error"] == "no such session"
    assert replies[3]["error"] == "session is not online"
    assert "bad MAC" in replies[4]["error"]
    assert "firewall" in replies[5]["error"]
    assert all(reply["op"] == "authorize" for reply in replies)
    # the kernel saw one batch with the sessions that passed their checks, in order
    assert nft.calls == [
        ("many", [good[0].sid, good[1].sid, refused_by_kernel.sid, good[2].sid, good[3].sid])
    ]


def test_waiting_commands_are_served_without_blocking_and_logged_as_one_batch(config, r, capsys):
    daemon = Daemon.__new__(Daemon)  # the command path only: no kernel, no loop
    daemon.redis, daemon.cursor = r, "0-0"
    daemon.reconciler = Reconciler(config, r, FakeComponent("nft", many=True), [])  # type: ignore[arg-type]
    daemon.handlers = {"ping": lambda command: {"ok": True, "n": command.fields["n"]}}
    assert daemon.serve_commands(None) == 0  # nothing waiting: back at once
    ids = [commands.send(r, "ping", n=n) for n in range(3)]
    assert daemon.serve_commands(None) == 3
    assert [commands.wait_reply(r, i, 1)["n"] for i in ids] == ["0", "1", "2"]
    assert daemon.serve_commands(None) == 0
    assert r.get(keys.GATEWAY_CURSOR) == daemon.cursor
    assert "commands_batch" in capsys.readouterr().out


# -- the reply first, the rest of a login right after it ------------------------------------


class AfterReply(FakeComponent):
    """A component whose login runs after the reply (pins, lease files); notes whether the
    requesters had their answers by then, and what it holds."""

    after_reply = True

    def __init__(self, name: str, r, *, explode: bool = False):
        super().__init__(name, many=False, explode=explode)
        self.r = r
        self.acks: list[str] = []  # request ids whose reply must be out first
        self.answered: list[bool] = []
        self.held: set[str] = set()

    def login(self, session, now):
        self.calls.append(("one", [session.sid]))
        self.answered.append(all(self.r.exists(keys.ack(i)) for i in self.acks))
        if self.explode:
            raise RuntimeError("netlink said no")
        self.held.add(session.sid)

    def logout(self, session, now):
        self.calls.append(("logout", [session.sid]))
        self.held.discard(session.sid)


class Settles(FakeComponent):
    """A component that leaves part of its login for after the reply (the shaper's split)."""

    def __init__(self, name: str, r):
        super().__init__(name, many=True)
        self.r = r
        self.acks: list[str] = []
        self.settled: list[bool] = []

    def settle(self):
        self.settled.append(all(self.r.exists(keys.ack(i)) for i in self.acks))


def _daemon(config, r, components):
    daemon = Daemon.__new__(Daemon)  # the command path only: no kernel, no loop
    daemon.redis, daemon.cursor, daemon.next_pass = r, "0-0", time.monotonic() + 60
    nft = FakeComponent("nft", many=True)
    daemon.reconciler = Reconciler(config, r, nft, components)  # type: ignore[arg-type]
    daemon.enforcer = nft
    daemon.handlers = {"authorize": daemon.authorize, "deauthorize": daemon.deauthorize}
    return daemon


def test_the_reply_goes_out_before_the_rest_of_the_login(config, r):
    now = time.time()
    sessions = [start_session(r, phone(n, now), now) for n in (1, 2, 3)]
    tc, pins = Settles("tc", r), AfterReply("pins", r)
    daemon = _daemon(config, r, [tc, pins])
    ids = [commands.send(r, "authorize", sid=s.sid) for s in sessions]
    tc.acks = pins.acks = ids
    assert daemon.serve_commands(None) == 3
    # the firewall and the newcomers' own classes before the reply; the split and the pins after
    assert daemon.enforcer.calls == [("many", [s.sid for s in sessions])]
    assert tc.calls == [("many", [s.sid for s in sessions])] and tc.settled == [True]
    assert pins.answered == [True, True, True] and pins.held == {s.sid for s in sessions}
    assert all(commands.wait_reply(r, i, 1)["ok"] for i in ids)
    assert daemon.reconciler.deferred == []
    assert daemon.next_pass > time.monotonic() + 30  # nothing failed: no pass brought forward


def test_a_failure_after_the_reply_brings_the_next_pass_now(config, r):
    now = time.time()
    session = start_session(r, phone(1, now), now)
    pins = AfterReply("pins", r, explode=True)
    daemon = _daemon(config, r, [pins])
    request = commands.send(r, "authorize", sid=session.sid)
    with capture_logs() as logs:
        daemon.serve_commands(None)
    reply = commands.wait_reply(r, request, 1)
    # the reply went before the pin failed: it cannot name it
    assert reply["ok"] is True and reply["warnings"] == []
    assert pins.answered == [True]
    assert any(e["event"] == "login_failed" and e["component"] == "pins" for e in logs)
    assert daemon.next_pass <= time.monotonic()  # the pass that heals it comes now
    # reported once: the next run does not bring another pass forward
    daemon.next_pass = time.monotonic() + 60
    daemon.run_deferred()
    assert daemon.next_pass > time.monotonic() + 30


def test_authorize_then_deauthorize_together_end_logged_out_with_nothing_left(config, r):
    now = time.time()
    session = start_session(r, phone(1, now), now)
    pins = AfterReply("pins", r)
    daemon = _daemon(config, r, [pins])
    ids = [commands.send(r, "authorize", sid=session.sid), commands.send(r, "deauthorize", sid=session.sid)]
    assert daemon.serve_commands(None) == 2
    # the pin comes after the authorize's reply and before the deauthorize, which takes it away
    assert pins.calls == [("one", [session.sid]), ("logout", [session.sid])] and pins.held == set()
    assert commands.wait_reply(r, ids[0], 1)["ok"] and commands.wait_reply(r, ids[1], 1)["ended"]
    assert get_session(r, session.sid).state == "ended"


def test_work_left_for_after_the_reply_runs_before_any_other_fast_path_or_pass(config, r):
    pins = AfterReply("pins", r)
    nft = FakeComponent("nft", many=True)
    nft.counters, nft.expected = dict, ""  # what a pass reads of the firewall: nothing counted
    rec = Reconciler(config, r, nft, [pins])  # type: ignore[arg-type]
    a, b = phone(1), phone(2)
    rec.login_many([a], NOW)
    assert pins.calls == []  # queued
    rec.login_many([b], NOW)  # the next login runs it first
    assert pins.calls == [("one", [a.sid])]
    rec.logout(a, NOW)  # and so does a logout: b's pin first, then both logouts
    assert pins.calls == [("one", [a.sid]), ("one", [b.sid]), ("logout", [a.sid])]
    rec.login_many([a], NOW)
    rec.run_pass(NOW)  # a pass too
    assert pins.calls[-1] == ("one", [a.sid]) and rec.deferred == []
