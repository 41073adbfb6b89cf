"""A contact's erasure in the read model: their survey comments go (found by ticket, and by contact for NPS),
the scores stay for the reports, and the erasure counts once per event id. No broker (facts.ingest is called
as the service's handler calls it)."""
import uuid

from sqlalchemy import select

from helpdesk_analytics import facts, personal_data
from helpdesk_analytics.models import SurveyAnswer


def _event(event_type, data, source="surveys"):
    return {"id": str(uuid.uuid4()), "type": event_type, "source": source, "time": "2026-12-07T10:00:00+00:00",
            "data": data}


def _answers(sessions):
    with sessions() as session:
        return {(a.kind, a.ticket): (a.score, a.comment) for a in session.scalars(select(SurveyAnswer))}


def test_erasure_removes_survey_comments_and_keeps_scores(sessions, settings):
    base = {"answer_id": "a", "submitted_at": "2026-12-07T09:00:00+00:00", "channel": "email"}
    events = [
        _event("csat_submitted", {**base, "survey_id": "s1", "ticket": "HD-1", "contact_id": 7, "rating": 2,
                                  "comment": "Eva: slow"}),
        _event("csat_submitted", {**base, "survey_id": "s2", "ticket": "HD-2", "contact_id": 8, "rating": 5,
                                  "comment": "Bo: great"}),
        _event("nps_submitted", {**base, "survey_id": "n1", "contact_id": 7, "score": 9, "comment": "Eva likes it"}),
    ]
    with sessions.begin() as session:
        facts.ingest(session, events, settings)
    with sessions() as session:
        exported = personal_data.export(session, ["HD-1"], 7)
    assert sorted(a["comment"] for a in exported["survey_answers"]) == ["Eva likes it", "Eva: slow"]
    erased = _event("contact_erased", {"contact_id": 7, "ticket_numbers": ["HD-1"], "emails": ["eva@example.se"],
                                       "erased_at": "2026-12-07T11:00:00+00:00"}, "tickets")
    for _ in range(2):  # a repeat of the event is skipped
        with sessions.begin() as session:
            facts.ingest(session, [erased], settings)
    assert _answers(sessions) == {("csat", "HD-1"): (2, None), ("csat", "HD-2"): (5, "Bo: great"),
                                  ("nps", None): (9, None)}
