"""NPS: once per customer per interval, to customers with a resolution in it; answers are events."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from helpdesk_common.errors import ValidationFailed
from helpdesk_surveys import domain, nps
from helpdesk_surveys.models import Outbox

NOW = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)
DAY = 86400


def resolved(sessions, number, email, when, language="nl"):
    with sessions.begin() as session:
        domain.open_survey(session, {"number": number, "channel": "email", "language": language,
                                     "requester": {"email": email, "contact_id": 4}}, when)


def sweep(sessions, when, interval=30 * DAY):
    with sessions.begin() as session:
        return [(s.email, s.language) for s in nps.due(session, interval, when)]


def test_asked_once_per_customer_per_interval(sessions):
    resolved(sessions, "HD-1", "eva@example.se", NOW - timedelta(days=2))
    resolved(sessions, "HD-2", "eva@example.se", NOW - timedelta(days=1))
    resolved(sessions, "HD-3", "bo@example.se", NOW - timedelta(days=40))  # outside the interval
    with sessions() as session:  # for one address only (what a resolution asks), nothing kept
        assert [s.email for s in nps.due(session, 30 * DAY, NOW, email="bo@example.se")] == []
    assert sweep(sessions, NOW) == [("eva@example.se", "nl")]  # two tickets, one survey
    assert sweep(sessions, NOW + timedelta(hours=1)) == []
    resolved(sessions, "HD-4", "eva@example.se", NOW + timedelta(days=2))
    assert sweep(sessions, NOW + timedelta(days=3)) == []  # asked 3 days ago: not again within 30 days
    resolved(sessions, "HD-5", "eva@example.se", NOW + timedelta(days=31))
    assert sweep(sessions, NOW + timedelta(days=31)) == [("eva@example.se", "nl")]  # the next interval


def test_the_mail_has_eleven_signed_links_and_an_answer_is_an_event(sessions):
    resolved(sessions, "HD-1", "eva@example.se", NOW, language="sv")
    key = domain.secret(sessions)
    with sessions.begin() as session:
        (survey,) = nps.due(session, 30 * DAY, NOW)
        mail = nps.mail("https://help.example.org", key, survey)
    link = f"https://help.example.org/help/recommend/{domain.sign(key, survey.id)}"
    assert all(f"{link}?score={score}\n" in mail["body"] + "\n" for score in range(11))
    assert mail["subject"] == "Skulle du rekommendera oss?"
    with sessions.begin() as session:
        nps.answer(session, survey.id, 9, "Fast", NOW)
    with sessions.begin() as session:
        later = nps.answer(session, survey.id, 10, None, NOW)
    assert (later["score"], later["comment"]) == (10, "Fast")
    with sessions() as session:
        events = [row.envelope for row in session.scalars(select(Outbox).order_by(Outbox.seq))]
    assert [(e["type"], e["source"], e["data"]["score"]) for e in events] == [
        ("nps_submitted", "surveys", 9), ("nps_submitted", "surveys", 10)]
    assert events[1]["data"]["replaces"] == events[0]["data"]["answer_id"]
    with pytest.raises(ValidationFailed), sessions.begin() as session:
        nps.answer(session, survey.id, 11, None, NOW)


def test_two_replicas_sweeping_at_once_open_one_survey_and_mail_it_once(sessions):
    from sqlalchemy.exc import IntegrityError

    from helpdesk_surveys.models import NpsSurvey

    resolved(sessions, "HD-1", "eva@example.se", NOW - timedelta(days=1))
    with sessions.begin() as session:
        (opened,) = nps.due(session, 30 * DAY, NOW)
    # what a second replica that read before the first committed would write: the same key, refused
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(NpsSurvey(id=nps.survey_id("eva@example.se", NOW + timedelta(seconds=1), 30 * DAY),
                              email="eva@example.se", language="nl", asked_at=NOW))
    with sessions.begin() as session:
        assert [s.id for s in nps.claim_unmailed(session, NOW)] == [opened.id]
    with sessions.begin() as session:
        assert nps.claim_unmailed(session, NOW) == []  # claimed: nobody mails it again


def test_the_survey_id_is_the_same_on_every_replica_within_an_interval():
    assert nps.survey_id("eva@example.se", NOW, 30 * DAY) == nps.survey_id("eva@example.se", NOW + timedelta(hours=5),
                                                                          30 * DAY)
    assert nps.survey_id("eva@example.se", NOW, 30 * DAY) != nps.survey_id("bo@example.se", NOW, 30 * DAY)


def test_the_sweep_asks_only_customers_of_the_given_channels(sessions):
    with sessions.begin() as session:
        domain.open_survey(session, {"number": "HD-7", "channel": "phone", "language": "en",
                                     "requester": {"email": "caller@example.com", "contact_id": 5}}, NOW)
    resolved(sessions, "HD-8", "eva@example.se", NOW)
    with sessions.begin() as session:
        assert [s.email for s in nps.due(session, 30 * DAY, NOW, channels={"email", "web", "chat"})] == [
            "eva@example.se"]
