"""The portal's survey in ``hotspot.toml``: the program's built-in questions and the reader of
``portal.survey``.

Three forms, all read by :func:`read_survey`::

    [portal]
    survey = true                  # the program's questions (false: no survey)

    [portal.survey]
    enabled = true
    questions = ["purpose", "gender"]   # built-in questions by id, in this order

    [[portal.survey.questions]]    # or a table per question: a built-in by id,
    id = "heard"                   # or one of the library's own with its texts
    text = { id = "Dari mana Anda tahu layanan ini?", en = "How did you hear of this service?" }
    options = [
      { id = "friend", text = { id = "Dari teman", en = "From a friend" } },
      { id = "poster", text = { id = "Poster di perpustakaan", en = "A poster in the library" } },
    ]

The built-in questions (:data:`BUILTIN`) are the program's own: every library asks them with
the same ids and options, so HQ can add them up across the 110 libraries, and their texts
are translated in the portal's catalogs. That is why a library's own question may not
reuse a built-in id. Ids are what is counted and sent to HQ (``question:answer`` in Redis,
RADIUS attributes, SQL rows), so they are short lowercase words without ``:``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.config.reader import _BAD, _bool, _Reader, _text, _type_name
from gateway.config.records import Survey, SurveyOption, SurveyQuestion

__all__ = [
    "BUILTIN",
    "DEFAULT_QUESTIONS",
    "MAX_OPTIONS",
    "MAX_QUESTIONS",
    "MAX_TEXT",
    "default_survey",
    "read_survey",
]

# The program's questions: id -> its answers' ids, in the order shown (texts: the portal's catalog).
BUILTIN: Mapping[str, tuple[str, ...]] = {
    # why did the visitor come today; one purpose each, no overlap
    "purpose": ("study", "work", "school", "reading", "other"),
    # age bands: 16_30 is youth as Indonesia's law on youth defines it (UU 40/2009: 16 to 30 years),
    # 60_plus the elderly as its law on their welfare does (UU 13/1998: 60 and older)
    "age": ("under_16", "16_30", "31_45", "46_59", "60_plus"),
    "gender": ("female", "male", "unsaid"),
    # "I run a small business" (usaha mikro/kecil): the program's micro-entrepreneurs
    "business": ("yes", "no"),
}
DEFAULT_QUESTIONS = ("purpose", "age", "gender", "business")
MAX_QUESTIONS = 6  # a visitor answers between logging in and going on: keep it short
MAX_OPTIONS = 8  # one tap each, readable at 320 px
MAX_TEXT = 200  # characters of a question's or an option's text

_ID = re.compile(r"^[a-z0-9][a-z0-9_]{0,31}$")
_ID_HINT = 'lowercase letters, digits and "_", at most 32, e.g. "heard_from"'


def _builtin(qid: str) -> SurveyQuestion:
    return SurveyQuestion(id=qid, text={}, options=tuple(SurveyOption(a, {}) for a in BUILTIN[qid]))


def default_survey(enabled: bool = True) -> Survey:
    """Return the program's survey: the built-in questions in :data:`DEFAULT_QUESTIONS` order."""
    return Survey(enabled=enabled, questions=tuple(_builtin(q) for q in DEFAULT_QUESTIONS))


def _label(r: _Reader, key: str, value: Any) -> dict[str, str] | object:
    try:
        text = _text(value)
    except ValueError as err:
        return r.problem(key, str(err))
    if not any(t.strip() for t in text.values()):
        return r.problem(key, "must not be empty")
    if any(len(t) > MAX_TEXT for t in text.values()):
        return r.problem(key, f"is longer than {MAX_TEXT} characters")
    return {lang: t.strip() for lang, t in text.items() if t.strip()}


def _id(r: _Reader, key: str, value: Any) -> str | object:
    if not isinstance(value, str):
        return r.problem(key, f"expected a string, got {_type_name(value)}")
    if not _ID.match(value):
        return r.problem(key, f'"{value}" is not an id ({_ID_HINT})')
    return value


def _options(r: _Reader, key: str, value: Any) -> tuple[SurveyOption, ...] | object:
    if not isinstance(value, list):
        return r.problem(key, f"expected a list of answers, got {_type_name(value)}")
    if not value:
        return r.problem(key, "needs answers to choose from (at least 2)")
    if len(value) == 1:
        return r.problem(key, "needs at least 2 answers to choose from")
    if len(value) > MAX_OPTIONS:
        return r.problem(key, f"has {len(value)} answers; at most {MAX_OPTIONS} fit one tap on a phone")
    out: list[SurveyOption] = []
    ok = True
    for i, item in enumerate(value, 1):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            r.problem(where, f'expected a table like {{ id = "...", text = "..." }}, got {_type_name(item)}')
            ok = False
            continue
        if not r.known_keys(where, item, {"id", "text"}):
            ok = False
        oid = _id(r, f"{where}.id", item["id"]) if "id" in item else r.problem(f"{where}.id", "is required")
        text = (
            _label(r, f"{where}.text", item["text"])
            if "text" in item
            else r.problem(f"{where}.text", "is required")
        )
        if oid is _BAD or text is _BAD:
            ok = False
            continue
        if any(o.id == oid for o in out):
            r.problem(f"{where}.id", f'"{oid}" is already an answer of this question')
            ok = False
            continue
        out.append(SurveyOption(oid, text))
    return tuple(out) if ok else _BAD


def _question(r: _Reader, key: str, item: Any) -> SurveyQuestion | object:
    if isinstance(item, str):
        item = {"id": item}
    if not isinstance(item, dict):
        return r.problem(key, f"expected a question id or a table, got {_type_name(item)}")
    r.known_keys(key, item, {"id", "text", "options"})
    if "id" not in item:
        return r.problem(f"{key}.id", "is required")
    qid = _id(r, f"{key}.id", item["id"])
    if qid is _BAD:
        return _BAD
    if qid in BUILTIN:
        if "text" in item or "options" in item:
            return r.problem(
                key, f'"{qid}" is one of the program\'s questions: its text and answers are fixed '
                "(so HQ can add libraries up); give your own question another id",
            )  # fmt: skip
        return _builtin(qid)
    if "text" not in item and "options" not in item:
        known = ", ".join(f'"{q}"' for q in BUILTIN)
        return r.problem(
            f"{key}.id", f'"{qid}" is not one of the program\'s questions ({known}); '
            "your own question needs a text and options",
        )  # fmt: skip
    text = (
        _label(r, f"{key}.text", item["text"]) if "text" in item else r.problem(f"{key}.text", "is required")
    )
    options = (
        _options(r, f"{key}.options", item["options"])
        if "options" in item
        else r.problem(f"{key}.options", "is required")
    )
    if text is _BAD or options is _BAD:
        return _BAD
    return SurveyQuestion(id=qid, text=text, options=options)


def _questions(r: _Reader, key: str, value: Any) -> tuple[SurveyQuestion, ...] | object:
    if isinstance(value, str):
        value = [value]  # one question by id
    if not isinstance(value, list):
        return r.problem(key, f"expected a list of questions, got {_type_name(value)}")
    if not value:
        return r.problem(key, 'needs at least one question (or set "enabled = false")')
    if len(value) > MAX_QUESTIONS:
        return r.problem(key, f"has {len(value)} questions; at most {MAX_QUESTIONS}, so visitors answer them")
    out: list[SurveyQuestion] = []
    ok = True
    for i, item in enumerate(value, 1):
        question = _question(r, f"{key}[{i}]", item)
        if question is _BAD:
            ok = False
            continue
        if any(q.id == question.id for q in out):
            r.problem(f"{key}[{i}].id", f'"{question.id}" is asked twice')
            ok = False
            continue
        out.append(question)
    return tuple(out) if ok else _BAD


def read_survey(r: _Reader, portal: Mapping[str, Any]) -> Survey | object:
    """Return ``portal.survey`` as a :class:`Survey`: true/false, or a table (see the module doc)."""
    value = portal.get("survey", True)
    if isinstance(value, bool):
        return default_survey(value)  # the old on/off key: the program's questions
    if not isinstance(value, dict):
        return r.problem(
            "portal.survey", f"expected true/false or a table ([portal.survey]), got {_type_name(value)}"
        )
    t = r.table("portal.survey", {"enabled", "questions"}, parent=portal)
    enabled = r.get(t, "portal.survey.enabled", _bool, True)
    questions = (
        _questions(r, "portal.survey.questions", t["questions"])
        if "questions" in t
        else default_survey().questions
    )
    if enabled is _BAD or questions is _BAD:
        return _BAD
    return Survey(enabled=enabled, questions=questions)
