"""Accounting to HQ with store and forward: a durable outbox on the router, replayed in order.

Two steps, both run by the gateway daemon (:class:`AccountingHook` is one of its pass hooks):

1. **Spool** (after every pass): the session starts and ends of ``hs:events`` become
   Accounting-Request records (Start / Stop) on the ``hs:radius:outbox`` stream, and
   every online session gets an Interim-Update each ``radius.interim_interval``. The
   position in ``hs:events`` moves in the same MULTI as the records are added, so each
   event is queued exactly once, whatever crashes when. Redis keeps the outbox on disk
   (AOF, ``appendfsync everysec``): a gateway ``kill -9`` loses nothing; a power cut
   loses at most the last second, as it does for sessions themselves.
2. **Send** (a thread): the oldest record first, with Acct-Delay-Time = now minus the
   event's time and Event-Timestamp = the event's time, so HQ books it when it happened.
   Up to 32 requests are in flight at once, never two of one session, so each session's
   records reach HQ in order. A record leaves the outbox only after HQ's
   Accounting-Response. While HQ is away the sender waits (1 s doubling to 30 s) and
   tries again from the oldest record.
   A crash between HQ's answer and the delete sends that record once more; HQ is
   idempotent on Acct-Unique-Session-Id (FreeRADIUS's queries: ``ON CONFLICT`` and
   ``UPDATE ... WHERE``), so ``radacct`` never doubles.

Interim-Updates are not queued while the outbox holds more than :data:`MAX_BACKLOG`
records (Start and Stop always are): after a long outage HQ gets every session's
start and end exactly, without a day of superseded interims first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import redis

from gateway.config import Config
from gateway.logs import get_logger
from gateway.model import keys, survey
from gateway.model.sessions import get_session, online_sessions
from gateway.model.store import connect
from gateway.radius.attributes import acct_attributes, device_id, survey_attributes
from gateway.radius.client import RadiusClient, RadiusUnavailable
from gateway.radius.login import device_key

__all__ = [
    "INTERIMS",
    "MAX_BACKLOG",
    "OUTBOX",
    "SPOOLED",
    "AccountingHook",
    "Sender",
    "outbox_record",
    "spool",
    "spool_survey",
]

OUTBOX = "hs:radius:outbox"
SPOOLED = "hs:radius:spooled"  # the last hs:events id turned into outbox records
INTERIMS = "hs:radius:interims"  # sid -> time of its last queued record (started sessions only)
SURVEY_SENT = "hs:radius:survey"  # "<day>:<question>:<answer>" -> the count last queued for HQ
SURVEY_EVERY = 60.0  # seconds between looks at the survey counts
MAX_BACKLOG = 200_000
BATCH = 500
WINDOW = 32  # requests in flight to HQ at once
MAX_WAIT = 30.0

log = get_logger("radius")


def outbox_record(status: str, fields: Mapping[str, str], user: str = "") -> dict[str, str]:
    """Return the outbox record of one accounting event (pure): what the sender needs, as text."""
    return {
        "status": status,
        "sid": fields["sid"],
        "time": fields["time"],
        "kind": fields.get("kind", ""),
        "plan": fields.get("plan", ""),
        "user": user or f"{fields.get('kind', 'local')}:{fields.get('voucher_id') or fields.get('plan', '')}",
        "mac": fields.get("mac", ""),
        "ip": fields.get("ip", ""),
        "bytes_up": fields.get("bytes_up", "0"),
        "bytes_down": fields.get("bytes_down", "0"),
        "duration": fields.get("duration", "0"),
        "reason": fields.get("reason", ""),
    }


def _last_event_id(r: redis.Redis) -> str:
    last = r.xrevrange(keys.EVENTS, count=1)
    return last[0][0] if last else "0-0"


def spool(r: redis.Redis, now: float, *, interim_interval: int) -> int:
    """Queue the new session starts/ends and the due Interim-Updates; return how many records."""
    position = r.get(SPOOLED)
    if position is None:
        # RADIUS just switched on: account from now on, not the router's whole history
        position = _last_event_id(r)
        r.set(SPOOLED, position)
        log.info("radius_accounting_starts", after_event=position)
    queued = 0
    while True:
        entries = r.xrange(keys.EVENTS, f"({position}", "+", count=BATCH)
        if not entries:
            break
        pipe = r.pipeline(transaction=True)
        for _stream_id, fields in entries:
            event, sid = fields.get("event"), fields.get("sid", "")
            if event not in ("start", "end") or not sid:
                continue
            session = get_session(r, sid)
            user = session.user if session is not None else ""
            if event == "start":
                pipe.xadd(OUTBOX, outbox_record("Start", fields, user))
                pipe.hset(INTERIMS, sid, fields["time"])
            else:
                pipe.xadd(OUTBOX, outbox_record("Stop", fields, user))
                pipe.hdel(INTERIMS, sid)
            queued += 1
        position = entries[-1][0]
        pipe.set(SPOOLED, position)
        pipe.execute()
        if len(entries) < BATCH:
            break
    if r.xlen(OUTBOX) < MAX_BACKLOG:
        queued += _queue_interims(r, now, interim_interval)
    return queued


def _queue_interims(r: redis.Redis, now: float, interval: int) -> int:
    marks = r.hgetall(INTERIMS)
    if not marks:
        return 0
    pipe = r.pipeline(transaction=True)
    queued = 0
    for session in online_sessions(r):
        mark = marks.get(session.sid)
        if mark is None or now - float(mark) < interval:
            continue  # its Start is not queued yet, or it is not due
        fields = {
            **session.record("start"),
            "time": repr(round(now, 3)),
            "duration": repr(round(now - session.started_at, 3)),
        }
        pipe.xadd(OUTBOX, outbox_record("Interim-Update", fields, session.user))
        pipe.hset(INTERIMS, session.sid, repr(now))
        queued += 1
    if queued:
        pipe.execute()
    return queued


def spool_survey(r: redis.Redis, now: float, *, timezone: str) -> int:
    """Queue today's and yesterday's survey counts that changed since last queued; return how many.

    Every question's (the config's, and any still in the data) is sent, one record per
    (day, question, answer). A count is a snapshot (HQ upserts it), so the record always
    carries the latest number and a resend changes nothing; nothing ties it to a session or
    device.
    """
    today = survey.day_of(now, timezone)
    counts = survey.counts(r, today - timedelta(days=1), today)
    sent = r.hgetall(SURVEY_SENT)
    pipe = r.pipeline(transaction=True)
    queued = 0
    for day, questions in counts.items():
        for question, answers in questions.items():
            for answer, count in answers.items():
                field = f"{day.isoformat()}:{question}:{answer}"
                if count == 0 or sent.get(field) == str(count):
                    continue
                pipe.xadd(OUTBOX, {
                    "status": "Survey", "sid": f"survey-{day.isoformat()}-{question}-{answer}",
                    "time": repr(now), "day": day.isoformat(), "question": question, "answer": answer,
                    "count": str(count),
                })  # fmt: skip
                pipe.hset(SURVEY_SENT, field, str(count))
                queued += 1
    if queued:
        pipe.expire(SURVEY_SENT, 7 * 86400)
        pipe.execute()
    return queued


class Sender:
    """Sends the outbox to HQ, oldest first; a record is deleted only once HQ answered."""

    def __init__(self, r: redis.Redis, config: Config, client: RadiusClient | None = None):
        if config.radius is None:
            raise ValueError("the config has no [radius] section")
        self.redis = r
        self.radius = config.radius
        self.client = client or RadiusClient(config.radius)
        self.key = device_key(config)
        self.sent = 0

    def attributes(self, record: Mapping[str, str], now: float) -> dict[str, Any]:
        """Return the Accounting-Request attributes of an outbox record, sent at ``now``."""
        if record.get("status") == "Survey":
            return survey_attributes(record, nas_identifier=self.radius.nas_identifier)
        mac = record.get("mac", "")
        return acct_attributes(
            record,
            nas_identifier=self.radius.nas_identifier,
            calling_station=device_id(mac, mode=self.radius.device_id, key=self.key) if mac else "",
            delay=int(max(0.0, now - float(record["time"]))),
            nas_ip=str(self.radius.nas_ip or ""),
        )

    def send_pending(self, limit: int = BATCH) -> int:
        """Send up to ``limit`` of the oldest records (``WINDOW`` in flight, one per session at a
        time so each session's records reach HQ in order); return how many HQ took.

        Raise :class:`RadiusUnavailable` when HQ took none.
        """
        items: list[tuple[str, dict[str, Any]]] = []
        sids: set[str] = set()
        now = time.time()
        for stream_id, record in self.redis.xrange(OUTBOX, "-", "+", count=limit):
            sid = record.get("sid", "")
            if sid in sids:
                continue  # after its session's earlier record, in a later round
            try:
                attrs = self.attributes(record, now)
            except (KeyError, ValueError) as err:
                # a record we cannot even encode would block the queue forever: log and drop it
                log.error("radius_record_dropped", id=stream_id, error=str(err))
                self.redis.xdel(OUTBOX, stream_id)
                continue
            sids.add(sid)
            items.append((stream_id, attrs))
        if not items:
            return 0
        acked = self.client.account_many(items, window=WINDOW)
        self.redis.xdel(OUTBOX, *acked)
        self.sent += len(acked)
        return len(acked)


class AccountingHook:
    """The daemon's pass hook: spool after each pass; a thread sends (see the module doc)."""

    def __init__(self, config: Config, r: redis.Redis):
        if config.radius is None:
            raise ValueError("the config has no [radius] section")
        self.config = config
        self.redis = r
        self.wake = threading.Event()  # records were queued
        self.stopping = threading.Event()
        self.kick = threading.Event()  # a reload or a stop: end a wait for HQ at once
        self.rebuild = threading.Event()  # a reload: the next round sends with a new Sender
        self.thread: threading.Thread | None = None
        self.survey_at = 0.0  # when the survey counts were last looked at

    def configure(self, config: Config) -> None:
        """Take a reloaded config: new servers, secret, timeouts and NAS settings apply from the
        next round of sends (the records in flight finish first; none leaves the outbox unanswered)."""
        if config.radius is None:
            raise ValueError("the config has no [radius] section")
        self.config = config
        self.rebuild.set()
        self.kick.set()
        self.wake.set()

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="radius-accounting", daemon=True)
        self.thread.start()

    def after_pass(self, now: float, *, duration: float, drift: dict[str, int], failed: bool) -> object:
        try:
            queued = spool(self.redis, now, interim_interval=self.config.radius.interim_interval)
            if now - self.survey_at >= min(SURVEY_EVERY, self.config.radius.interim_interval):
                self.survey_at = now
                queued += spool_survey(self.redis, now, timezone=self.config.library.timezone)
        except redis.RedisError as err:
            log.warning("radius_spool_failed", error=str(err))
            return None
        except Exception:  # a hook must not raise: enforcement never waits on accounting
            log.exception("radius_spool_failed")
            return None
        if queued:
            self.wake.set()
        return queued

    def stop(self) -> None:
        self.stopping.set()
        self.kick.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(5)

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` for HQ to come back; a reload or a stop ends the wait."""
        self.kick.wait(seconds)
        self.kick.clear()

    def _run(self) -> None:
        wait = 1.0
        sender: Sender | None = None
        while not self.stopping.is_set():
            try:
                if sender is None or self.rebuild.is_set():
                    self.rebuild.clear()
                    # the config (servers, secret file, timeouts, NAS-Identifier) as it is now
                    sender = Sender(sender.redis if sender else connect(self.config), self.config)
                    wait = 1.0
                sent = sender.send_pending()
                if sent:
                    log.info("radius_accounting_sent", records=sent, backlog=sender.redis.xlen(OUTBOX))
                    wait = 1.0
                    continue
                self.wake.wait(1.0)
            except RadiusUnavailable:
                backlog = sender.redis.xlen(OUTBOX) if sender is not None else -1
                log.warning("radius_accounting_waiting", retry_in=wait, backlog=backlog)
                self._pause(wait)
                wait = min(wait * 2, MAX_WAIT)
            except Exception:
                log.exception("radius_accounting_failed", retry_in=wait)
                self._pause(wait)
                wait = min(wait * 2, MAX_WAIT)
            self.wake.clear()
