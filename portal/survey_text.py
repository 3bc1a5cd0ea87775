"""The survey's words, in the reader's language: the program's questions from the catalogs,
a library's own from its config (``portal.survey``, :mod:`gateway.config.survey`).

Used by the visitor pages (the questions) and the desk's reports (the counts); it lives
outside ``desk/`` so its strings are in the visitors' catalog, which the desk reads too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from flask_babel import get_locale, gettext

from gateway.config import SurveyQuestion
from portal.web import hotspot

__all__ = ["Asked", "answer_text", "asked", "question_text", "survey_table"]


def _builtin() -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Return the program's questions and answers (gateway.config.survey.BUILTIN) in the reader's
    language. Plain ``gettext`` calls, made per request, so ``make translations`` finds them."""
    questions = {
        "purpose": gettext("What brings you to the library today?"),
        "age": gettext("How old are you?"),
        "gender": gettext("Are you a woman or a man?"),
        "business": gettext("Do you run a small business (UMKM)?"),
    }
    answers = {
        # one purpose each, no overlap (schoolwork is not "studying" on its own)
        ("purpose", "study"): gettext("Self-study (a course, a skill)"),
        ("purpose", "work"): gettext("Work or business"),
        ("purpose", "school"): gettext("School or college assignments"),
        ("purpose", "reading"): gettext("Leisure reading (books, news)"),
        ("purpose", "other"): gettext("Something else"),
        ("age", "under_16"): gettext("Under 16"),
        ("age", "16_30"): gettext("16 to 30"),
        ("age", "31_45"): gettext("31 to 45"),
        ("age", "46_59"): gettext("46 to 59"),
        ("age", "60_plus"): gettext("60 or older"),
        ("gender", "female"): gettext("A woman"),
        ("gender", "male"): gettext("A man"),
        ("gender", "unsaid"): gettext("I prefer not to say"),
        ("business", "yes"): gettext("Yes"),
        ("business", "no"): gettext("No"),
    }
    return questions, answers


COMPACT = 16  # answers this short sit side by side (two or more to a row at 320 px)


def _in(texts: Mapping[str, str], fallback: str) -> str:
    lang = str(get_locale())
    return texts.get(lang) or next((t for t in texts.values() if t), fallback)


def _question(qid: str) -> SurveyQuestion | None:
    return next((q for q in hotspot().portal.survey.questions if q.id == qid), None)


def question_text(question: SurveyQuestion | str) -> str:
    """Return a question's text in the reader's language (its id if it is no longer configured)."""
    if isinstance(question, str):
        question = _question(question) or question
    if isinstance(question, str):
        return _builtin()[0].get(question, question)
    if question.builtin:
        return _builtin()[0][question.id]
    return _in(question.text, question.id)


def answer_text(question: SurveyQuestion | str, answer: str) -> str:
    """Return an answer's text in the reader's language (its id if it is no longer configured)."""
    if isinstance(question, str):
        question = _question(question) or question
    qid = question if isinstance(question, str) else question.id
    builtin = _builtin()[1]
    if (qid, answer) in builtin:
        return builtin[qid, answer]
    if isinstance(question, str):
        return answer
    option = next((o for o in question.options if o.id == answer), None)
    return _in(option.text, answer) if option else answer


@dataclass(frozen=True)
class Asked:
    """One question as a visitor page shows it."""

    id: str
    text: str
    answers: list[tuple[str, str]]  # (id, text)
    compact: bool  # short answers: side by side


def asked(questions: Iterable[SurveyQuestion], done: Iterable[str] = ()) -> list[Asked]:
    """Return the ``questions`` not yet answered (``done``: their ids), ready for a page."""
    done = set(done)
    out = []
    for q in questions:
        if q.id in done:
            continue
        answers = [(a, answer_text(q, a)) for a in q.answers]
        out.append(Asked(q.id, question_text(q), answers, all(len(t) <= COMPACT for _, t in answers)))
    return out


def survey_table(counts: Mapping[str, Mapping[str, int]]) -> list[dict]:
    """Return a report's survey answers for the desk: per question its text, answers, counts and
    shares (in per cent of that question's answers)."""
    out = []
    for qid, answers in counts.items():
        total = sum(answers.values())
        rows = [(answer_text(qid, a), n, round(100 * n / total) if total else 0) for a, n in answers.items()]
        out.append({"id": qid, "text": question_text(qid), "rows": rows, "total": total})
    return out
