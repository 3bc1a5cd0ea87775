"""The survey's anonymous daily counts per question and answer (real Redis), and the data of the
one-question survey before it (read as question "purpose")."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from gateway.config.survey import default_survey
from gateway.model import keys, survey

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC = 15:00 WIB
TZ = "Asia/Jakarta"
QUESTIONS = default_survey().questions
D15 = date(2027, 1, 15)


def _record(r, answers: dict, sid: str, now: float = NOW) -> list[str]:
    return survey.record(r, answers, sid=sid, now=now, timezone=TZ, ttl=600)


def test_counts_per_day_question_and_answer_in_the_librarys_zone(r):
    assert _record(r, {"purpose": "study", "age": "16_30", "gender": "female"}, "a") == [
        "purpose",
        "age",
        "gender",
    ]
    assert _record(r, {"purpose": "study", "business": "yes"}, "b") == ["purpose", "business"]
    late = NOW + 9.5 * 3600  # 00:30 WIB the next day (still the 15th in UTC)
    assert _record(r, {"purpose": "reading"}, "c", now=late) == ["purpose"]
    d16 = date(2027, 1, 16)
    found = survey.counts(r, D15, date(2027, 1, 17), QUESTIONS)
    assert found[D15]["purpose"] == {"study": 2, "work": 0, "school": 0, "reading": 0, "other": 0}
    assert found[D15]["age"] == {"under_16": 0, "16_30": 1, "31_45": 0, "46_59": 0, "60_plus": 0}
    assert found[D15]["gender"] == {"female": 1, "male": 0, "unsaid": 0}
    assert found[D15]["business"] == {"yes": 1, "no": 0}
    assert list(found[D15]) == ["purpose", "age", "gender", "business"], "the config's order"
    assert found[d16]["purpose"]["reading"] == 1
    assert found[date(2027, 1, 17)] == {q.id: dict.fromkeys(q.answers, 0) for q in QUESTIONS}
    total = survey.totals(r, D15, d16, QUESTIONS)
    assert total["purpose"] == {"study": 2, "work": 0, "school": 0, "reading": 1, "other": 0}
    assert total["business"] == {"yes": 1, "no": 0}


def test_each_question_once_per_session_and_nothing_personal_kept(r):
    assert _record(r, {"purpose": "work"}, "s1") == ["purpose"]
    assert _record(r, {"purpose": "study", "gender": "male"}, "s1") == ["gender"], "purpose was answered"
    assert _record(r, {"gender": "female"}, "s1") == []
    assert survey.answered(r, "s1") == {"purpose", "gender"} and survey.answered(r, "s2") == frozenset()
    assert 0 < r.ttl(keys.survey_done("s1")) <= 600
    assert r.smembers(keys.survey_done("s1")) == {"purpose", "gender"}, "the marker holds no answer"
    assert r.hgetall(keys.survey_day("2027-01-15")) == {"purpose:work": "1", "gender:male": "1"}
    assert _record(r, {}, "s3") == []
    for bad in ({"purpose": "a:b"}, {"": "x"}, {"purpose": "x" * 33}):
        with pytest.raises(ValueError):
            _record(r, bad, "s2")


def test_a_double_tap_counts_once(r):
    """Many requests of one session at once (a double tap, two tabs, a retried POST): one count."""
    barrier = threading.Barrier(8)

    def tap() -> None:
        barrier.wait()
        _record(r, {"age": "31_45"}, "same")

    threads = [threading.Thread(target=tap) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert survey.totals(r, D15, D15, QUESTIONS)["age"]["31_45"] == 1


def test_pick_keeps_only_the_configs_questions_and_answers():
    form = {"q_purpose": "school", "q_age": "99_100", "q_gender": "", "q_colour": "red", "purpose": "work"}
    assert survey.pick(form, QUESTIONS) == {"purpose": "school"}
    assert survey.pick({"q_business": "no"}, QUESTIONS[:1]) == {}, "a question not asked is not counted"


def test_the_one_question_surveys_data_counts_as_purpose(r):
    """Before several questions, a day's hash held purpose -> count and a session's marker was a
    string: both still count, for reports and for "answered once"."""
    r.hset(keys.survey_day("2027-01-15"), mapping={"study": 3, "work": 1})
    r.set(keys.survey_answered("old"), "1", ex=600)
    assert survey.answered(r, "old") == {"purpose"}
    assert _record(r, {"purpose": "school", "age": "under_16"}, "old") == ["age"], (
        "purpose was answered before"
    )
    assert _record(r, {"purpose": "study"}, "new") == ["purpose"]
    found = survey.counts(r, D15, D15, QUESTIONS)[D15]
    assert found["purpose"] == {"study": 4, "work": 1, "school": 0, "reading": 0, "other": 0}
    assert found["age"]["under_16"] == 1
    assert survey.split_field("study") == ("purpose", "study")
    assert survey.split_field("age:16_30") == ("age", "16_30")


def test_answers_to_a_question_no_longer_asked_are_still_reported(r):
    r.hset(keys.survey_day("2027-01-15"), mapping={"heard:poster": 2, "purpose:work": 1})
    found = survey.counts(r, D15, D15, QUESTIONS[:1])[D15]
    assert list(found) == ["purpose", "heard"] and found["heard"] == {"poster": 2}
    assert survey.counts(r, D15, D15)[D15] == {"heard": {"poster": 2}, "purpose": {"work": 1}}
