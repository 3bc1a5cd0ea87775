"""The durable session log: every session start and end as a JSON line on disk.

:mod:`gateway.model.sessions` appends a record to the ``hs:events`` Redis stream in the same
transaction that starts or ends a session; that stream is what live readers follow
(``hotspotctl logs -f``). The gateway copies it, in order, to one file a day::

    <paths.log_dir>/sessions-2026-11-24.jsonl

one JSON object a line (see :func:`to_record`), each batch flushed with ``fsync`` before
the gateway moves on. The day is the library's (``library.timezone``) day of the moment
the record entered the stream, so files rotate at local midnight and records stay in
stream order across files.

Exactly once, across crashes: each line carries its stream id, and the position to
resume from is read back from the newest file's last complete line, not from a
separate counter that could disagree with it. A ``kill -9`` or a power cut in the middle
of a line leaves a torn tail, which is cut off on the next start and written again.
(A small ``sessions.position`` file only remembers the position when retention has
deleted every file.) Files older than ``session_log.retention_days`` days are deleted.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis

from gateway.days import day_of
from gateway.logs import get_logger
from gateway.model import keys

__all__ = [
    "FILE_PATTERN",
    "AppendError",
    "SessionLog",
    "SessionLogWriter",
    "read_records",
    "to_record",
]

FILE_PATTERN = re.compile(r"^sessions-(\d{4}-\d{2}-\d{2})\.jsonl$")
POSITION_FILE = "sessions.position"
_INTS = ("bytes_up", "bytes_down")
_FLOATS = ("duration",)
_TIMES = ("time", "started_at")

log = get_logger("sessionlog")


def stream_ms(stream_id: str) -> int:
    """Return the milliseconds part of a Redis stream id ``"1732480000000-0"``."""
    return int(stream_id.split("-", 1)[0])


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def to_record(stream_id: str, fields: dict[str, str], library: str, tz: ZoneInfo) -> dict[str, Any]:
    """Return the session-log line for one ``hs:events`` entry (pure).

    Keys: ``id`` (stream id), ``library``, ``event`` ("start"/"end"), ``time`` and
    ``started_at`` (ISO 8601 in the library's zone), ``ts`` (epoch seconds of ``time``),
    ``sid``, ``kind``, ``plan``, ``voucher_id``, ``mac``, ``ip``, ``bytes_up``,
    ``bytes_down``, ``duration`` (seconds), ``reason`` (end reason, "" on start), and
    any other field the stream carries, as a string.
    """
    record: dict[str, Any] = {"id": stream_id, "library": library}
    for key, value in fields.items():
        if key in _INTS:
            record[key] = int(float(value or 0))
        elif key in _FLOATS:
            record[key] = float(value or 0)
        elif key in _TIMES:
            seconds = float(value or 0)
            record[key] = datetime.fromtimestamp(seconds, tz).isoformat(timespec="seconds")
            if key == "time":
                record["ts"] = round(seconds, 3)
        else:
            record[key] = value
    return record


@dataclass
class SessionLog:
    """The folder of daily JSON-lines files; appends, repairs, finds its position, prunes."""

    directory: Path
    library: str
    timezone: str = "Asia/Jakarta"
    retention_days: int = 365

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        self.tz = ZoneInfo(self.timezone)

    @classmethod
    def from_config(cls, config) -> SessionLog:
        """Return the session log of ``config`` (``paths.log_dir``, library id, zone, retention)."""
        return cls(
            config.paths.log_dir,
            library=config.library.id,
            timezone=config.library.timezone,
            retention_days=config.session_log.retention_days,
        )

    def path_for(self, day: date) -> Path:
        return self.directory / f"sessions-{day.isoformat()}.jsonl"

    def files(self) -> list[tuple[date, Path]]:
        """Return the log files as (day, path), oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = FILE_PATTERN.match(path.name)
            if match:
                found.append((date.fromisoformat(match.group(1)), path))
        return sorted(found)

    def last_id(self) -> str:
        """Return the stream id of the last record on disk ("0-0" if none), repairing a torn tail."""
        for _day, path in reversed(self.files()):
            found = _last_complete_id(path)
            if found:
                return found
        # no record on disk: a new router, or retention deleted every file
        return self._read_position()

    def append(self, entries: Iterable[tuple[str, dict[str, str]]]) -> int:
        """Append stream entries, each to its day's file, and fsync; return how many were written.

        Each day's lines land whole or not at all: when a write or the ``fsync`` fails (a
        full disk: ``ENOSPC``), the file is cut back to its length before this append, and
        :class:`AppendError` says which entries did reach the disk (the days before); the
        writer then reads its position back from the files, so no record is lost or
        written twice.
        """
        by_day: dict[date, list[tuple[str, str]]] = {}
        for stream_id, fields in entries:
            line = json.dumps(to_record(stream_id, fields, self.library, self.tz), ensure_ascii=False)
            by_day.setdefault(day_of(stream_ms(stream_id) / 1000, self.tz), []).append((stream_id, line))
        if not by_day:
            return 0
        written, last = 0, None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for day in sorted(by_day):  # stream order: ids grow with time, so days do too
                self._append_whole(self.path_for(day), [line for _, line in by_day[day]])
                written += len(by_day[day])
                last = by_day[day][-1][0]
        except OSError as err:
            raise AppendError(err, written, last) from err
        self._write_position(last)
        return written

    def _append_whole(self, path: Path, lines: list[str]) -> None:
        """Append ``lines`` to ``path`` and fsync, or leave ``path`` as it was and raise OSError."""
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            before = os.lseek(fd, 0, os.SEEK_END)
            try:
                view = memoryview(("\n".join(lines) + "\n").encode())
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, before)  # a shorter file needs no new block: this works on a full disk
                os.fsync(fd)
                raise
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.directory)

    def prune(self, today: date) -> list[Path]:
        """Delete files older than ``retention_days`` before ``today``; return them.

        Counted back from ``today`` or from the newest file's day, whichever is earlier: a
        clock far ahead (a router waking up a year on after a power cut, before NTP) must
        not make a year of the library's records look old enough to delete.
        """
        files = self.files()
        newest = files[-1][0] if files else today
        if newest < today - timedelta(days=1):
            log.info("session_log_prune_from_newest", today=today.isoformat(), newest=newest.isoformat())
        oldest = min(today, newest) - timedelta(days=self.retention_days)
        removed = []
        for day, path in files:
            if day < oldest:
                path.unlink(missing_ok=True)
                removed.append(path)
        if removed:
            log.info("session_log_pruned", files=len(removed), before=oldest.isoformat())
        return removed

    def records(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[dict]:
        """Yield the records whose ``ts`` is in [since, until), in stream order."""
        yield from read_records(self, since, until)

    def _read_position(self) -> str:
        try:
            text = (self.directory / POSITION_FILE).read_text().strip()
        except OSError:
            return "0-0"
        return text if re.match(r"^\d+-\d+$", text) else "0-0"

    def _write_position(self, stream_id: str) -> None:
        # only read when retention has deleted every file (the files are the truth): a full
        # disk here must not fail an append whose records are already on disk
        tmp = self.directory / f".{POSITION_FILE}.tmp"
        try:
            tmp.write_text(stream_id + "\n")
            os.replace(tmp, self.directory / POSITION_FILE)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            log.warning("session_log_position_not_saved", error=str(err), position=stream_id)


class AppendError(OSError):
    """An append failed part way (disk full, I/O error): ``written`` records up to ``last_id``
    reached the disk before it; none of the rest did."""

    def __init__(self, cause: OSError, written: int, last_id: str | None):
        super().__init__(cause.errno, cause.strerror or str(cause), cause.filename)
        self.written = written
        self.last_id = last_id


def read_records(
    session_log: SessionLog, since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict]:
    """Yield records of ``session_log`` with ``since <= ts < until`` (either may be None)."""
    low = since.timestamp() if since else None
    high = until.timestamp() if until else None
    for day, path in session_log.files():
        # a file holds the records that entered the stream that day; their event time is
        # the same moment, give or take the clock of whoever wrote them: allow a day
        if since and day < (since.astimezone(session_log.tz).date() - timedelta(days=1)):
            continue
        if until and day > (until.astimezone(session_log.tz).date() + timedelta(days=1)):
            continue
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.endswith("\n"):
                    break  # a torn tail being written right now
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                ts = record.get("ts", 0)
                if (low is None or ts >= low) and (high is None or ts < high):
                    yield record


def _last_complete_id(path: Path) -> str | None:
    """Return the id of the last complete line of ``path``; cut off a torn tail first."""
    with path.open("rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return None
        chunk = min(size, 64 * 1024)
        while True:
            # enough to hold the last complete line whole: two newlines, or the whole file
            handle.seek(size - chunk)
            tail = handle.read(chunk)
            if tail.count(b"\n") >= 2 or chunk == size:
                break
            chunk = min(size, chunk * 4)
        if not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n") + 1  # 0 when the file holds only a torn line
            keep = size - chunk + cut
            log.warning("session_log_torn_line_removed", file=path.name, bytes=size - keep)
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
            tail = tail[:cut]
        for line in reversed(tail.splitlines()):
            try:
                return str(json.loads(line)["id"])
            except (ValueError, KeyError, TypeError):
                continue
    return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SessionLogWriter:
    """Copies ``hs:events`` to the :class:`SessionLog`; call :meth:`pump` from the daemon's loop."""

    def __init__(self, r: redis.Redis, session_log: SessionLog, *, batch: int = 1000):
        self.redis = r
        self.log = session_log
        self.batch = batch
        self.position: str | None = None  # read from disk on first use
        self.written = 0  # records written by this process (for metrics)
        self.last_pruned: date | None = None

    def pump(self, now: float, max_batches: int = 50) -> int:
        """Write every new stream entry to disk (bounded); return how many were written."""
        if self.position is None:
            self.position = self.log.last_id()
            self._check_gap()
        today = day_of(now, self.log.tz)
        if self.last_pruned != today:
            self.log.prune(today)
            self.last_pruned = today
        total = 0
        try:
            for _ in range(max_batches):
                found = self.redis.xread({keys.EVENTS: self.position}, count=self.batch)
                entries = [(_s(i), {_s(k): _s(v) for k, v in f.items()}) for _, got in found for i, f in got]
                if not entries:
                    break
                total += self.log.append(entries)
                self.position = entries[-1][0]
                if len(entries) < self.batch:
                    break
        except OSError as err:
            # the records not written wait in the stream; the next pump reads back from the disk
            # where to resume, as after a restart (and cuts a torn line if one could not be undone)
            total += getattr(err, "written", 0)
            self.position = None
            raise
        finally:
            self.written += total
        return total

    def lag(self, cap: int = 10_000) -> int:
        """Return how many stream entries are not on disk yet (0 when caught up; at most ``cap``)."""
        if self.position is None:
            return 0
        return len(self.redis.xrange(keys.EVENTS, f"({self.position}", "+", count=cap))

    def _check_gap(self) -> None:
        try:
            info = self.redis.xinfo_stream(keys.EVENTS)
        except redis.ResponseError:
            return  # no stream yet
        deleted = _s(info.get("max-deleted-entry-id") or "0-0")
        if _id_key(deleted) > _id_key(self.position or "0-0"):
            # entries after what is on disk were trimmed away (the writer was down for very long)
            log.warning("session_log_gap", on_disk=self.position, trimmed_up_to=deleted)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
