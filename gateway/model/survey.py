"""The portal's survey: optional questions, one tap each, counted anonymously per day.

The questions come from the config (``portal.survey``, :mod:`gateway.config.survey`): the
program's own (purpose of the visit, age group, gender, "I run a small business") and a
library's. Answers are stored **anonymously**: one counter per day (in the library's time
zone), question and answer, fields ``<question>:<answer>`` of the hash
``hs:survey:<YYYY-MM-DD>``. No MAC, session, voucher or time of day is kept with an
answer, so no report can tell who answered what. The only other key is a short-lived
"these questions are answered" set of question ids per session
(``hs:survey:done:<sid>``), which holds no answer and expires with the session.

Data written before the survey had several questions is read as it is: a field without
``:`` (``study``) is an answer to ``purpose``, and a session's old marker
``hs:survey:answered:<sid>`` means it answered ``purpose``. Nothing is rewritten.

The program's reports (``gateway.model.reports``) read the counts with :func:`counts` or
:func:`totals`; the router sends them to HQ (``gateway.radius.accounting.spool_survey``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import redis

from gateway.config import SurveyQuestion
from gateway.days import day_of
from gateway.model import keys

__all__ = [
    "LEGACY_QUESTION",
    "Counts",
    "add",
    "answered",
    "counts",
    "counts_sum",
    "day_of",
    "pick",
    "record",
    "split_field",
    "totals",
]

LEGACY_QUESTION = "purpose"  # what a field without ":" answers (the first survey's only question)
KEEP_DAYS = 3 * 366  # counts are tiny; keep three years of program history

Counts = dict[str, dict[str, int]]  # question -> answer -> count

# Count each (question, answer) once per session, atomically: the marker and the counter move
# together, so a double tap, two tabs or a retried POST never count twice.
# KEYS: done set, legacy marker, day hash. ARGV: ttl, keep, then question, answer pairs.
_RECORD = """
local counted = {}
for i = 3, #ARGV, 2 do
  local q, a = ARGV[i], ARGV[i + 1]
  local legacy = q == 'purpose' and redis.call('EXISTS', KEYS[2]) == 1
  if not legacy and redis.call('SADD', KEYS[1], q) == 1 then
    redis.call('HINCRBY', KEYS[3], q .. ':' .. a, 1)
    counted[#counted + 1] = q
  end
end
if #counted > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[3], ARGV[2])
end
return counted
"""


def pick(form: Mapping[str, str], questions: Iterable[SurveyQuestion], prefix: str = "q_") -> dict[str, str]:
    """Return the valid answers in ``form`` (``<prefix><question>`` -> answer id) as {question: answer}.

    Anything else (an unknown question or answer, an empty value) is left out: a bad
    answer is never an error, the survey is optional.
    """
    out = {}
    for question in questions:
        answer = form.get(prefix + question.id, "")
        if answer and answer in question.answers:
            out[question.id] = answer
    return out


def record(
    r: redis.Redis, answers: Mapping[str, str], *, sid: str, now: float, timezone: str, ttl: int
) -> list[str]:
    """Count ``answers`` ({question: answer}) on today's date; return the questions counted.

    A question session ``sid`` already answered is not counted again. ``ttl`` (seconds,
    e.g. the session's time left) bounds how long the "answered" marker of ``sid`` lives.
    Raises ValueError for an id that cannot be a question or an answer (see :func:`pick`,
    which checks answers against the config).
    """
    for question, answer in answers.items():
        if not _is_id(question) or not _is_id(answer):
            raise ValueError(f"not a survey answer: {question!r}={answer!r}")
    if not answers:
        return []
    day_key = keys.survey_day(day_of(now, timezone).isoformat())
    args = [max(60, int(ttl)), KEEP_DAYS * 86400]
    for question, answer in answers.items():
        args += [question, answer]
    counted = r.eval(_RECORD, 3, keys.survey_done(sid), keys.survey_answered(sid), day_key, *args)
    return [q.decode() if isinstance(q, bytes) else q for q in counted]


def _is_id(text: str) -> bool:
    return isinstance(text, str) and 0 < len(text) <= 32 and ":" not in text and text.isprintable()


def answered(r: redis.Redis, sid: str) -> frozenset[str]:
    """Return the ids of the questions session ``sid`` has answered."""
    with r.pipeline(transaction=False) as pipe:
        pipe.smembers(keys.survey_done(sid))
        pipe.exists(keys.survey_answered(sid))
        done, legacy = pipe.execute()
    return frozenset(done) | ({LEGACY_QUESTION} if legacy else set())


def split_field(field: str) -> tuple[str, str]:
    """Return (question, answer) of a stored field: ``age:16_30``, or an old ``study`` (purpose)."""
    question, sep, answer = field.partition(":")
    return (question, answer) if sep else (LEGACY_QUESTION, field)


def _zero(questions: Iterable[SurveyQuestion]) -> Counts:
    return {q.id: dict.fromkeys(q.answers, 0) for q in questions}


def counts(
    r: redis.Redis, start: date, end: date, questions: Iterable[SurveyQuestion] = ()
) -> dict[date, Counts]:
    """Return ``{day: {question: {answer: count}}}`` for every day from ``start`` to ``end`` (inclusive).

    Every answer of ``questions`` is listed, in their order, zero when nobody gave it; answers
    found in the data to other questions (a question since dropped from the config) follow.
    """
    questions = list(questions)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    with r.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hgetall(keys.survey_day(day.isoformat()))
        rows = pipe.execute()
    out = {}
    for day, row in zip(days, rows, strict=True):
        found = _zero(questions)
        for field in sorted(row):
            question, answer = split_field(field)
            answers = found.setdefault(question, {})
            answers[answer] = answers.get(answer, 0) + int(row[field])
        out[day] = found
    return out


def add(into: Counts, more: Mapping[str, Mapping[str, int]]) -> Counts:
    """Add the counts ``more`` into ``into`` (in place, keeping its order) and return it."""
    for question, answers in more.items():
        target = into.setdefault(question, {})
        for answer, n in answers.items():
            target[answer] = target.get(answer, 0) + n
    return into


def counts_sum(
    days: Iterable[Mapping[str, Mapping[str, int]]], questions: Iterable[SurveyQuestion] = ()
) -> Counts:
    """Return the sum of several days' counts (``questions`` listed first, with zeros)."""
    summed = _zero(questions)
    for day_counts in days:
        add(summed, day_counts)
    return summed


def totals(r: redis.Redis, start: date, end: date, questions: Iterable[SurveyQuestion] = ()) -> Counts:
    """Return the answers per question and answer summed over ``start`` to ``end`` (inclusive)."""
    questions = list(questions)
    return counts_sum(counts(r, start, end, questions).values(), questions)
