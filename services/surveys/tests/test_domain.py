"""Satisfaction surveys as plain rules, on a real database (SQLite and PostgreSQL) migrated with the service's migrations."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from helpdesk_common.errors import NotFound, ValidationFailed
from helpdesk_surveys import domain
from helpdesk_surveys.models import Outbox

NOW = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)
SETTINGS = domain.Settings(public_url="https://help.example.org/")


def ticket(number="HD-000007", channel="web", language="sv"):
    return {"number": number, "subject": "VPN", "channel": channel, "language": language, "team": "network",
            "assignee": "agent-3", "requester": {"email": "eva@example.se", "contact_id": 12}}


def test_a_resolution_asks_by_mail_on_mail_channels_and_by_a_message_on_the_others():
    assert domain.how_to_ask(SETTINGS, ticket(), "resolved") == "mail"
    assert domain.how_to_ask(SETTINGS, ticket(channel="email"), "resolved") == "mail"
    for channel in ("chat", "social", "phone"):
        assert domain.how_to_ask(SETTINGS, ticket(channel=channel), "resolved") == "message"
    assert domain.how_to_ask(SETTINGS, ticket(), "closed") is None
    assert domain.how_to_ask(SETTINGS, ticket(channel="api"), "resolved") is None
    assert not domain.should_ask(domain.Settings(message_channels=frozenset()), ticket(channel="chat"), "resolved")


def test_the_message_carries_one_signed_link_in_the_tickets_language(sessions):
    key = domain.secret(sessions)
    with sessions.begin() as session:
        survey = domain.open_survey(session, ticket(channel="social", language="nl"), NOW)
        message = domain.survey_message(SETTINGS, key, survey)
    assert message["visibility"] == "public" and "HD-000007 is opgelost" in message["body"]
    link = message["body"].rsplit(" ", 1)[-1]
    assert link.startswith("https://help.example.org/help/satisfaction/") and "?" not in link
    assert domain.survey_id_of(key, link.rsplit("/", 1)[-1]) == survey.id


def test_one_survey_per_ticket_and_a_mail_with_five_signed_one_click_links(sessions):
    key = domain.secret(sessions)
    assert domain.secret(sessions) == key  # made once, then read
    with sessions.begin() as session:
        first = domain.open_survey(session, ticket(), NOW)
        again = domain.open_survey(session, ticket(), NOW)
        mail = domain.survey_mail(SETTINGS, key, first, "VPN")
    assert again.id == first.id
    assert mail["to"] == "eva@example.se" and mail["language"] == "sv" and "HD-000007" in mail["subject"]
    link = f"https://help.example.org/help/satisfaction/{domain.sign(key, first.id)}"
    assert [f"{link}?rating={r}" in mail["body"] for r in range(1, 6)] == [True] * 5
    assert "mycket nöjd" in mail["body"]
    assert domain.survey_id_of(key, domain.sign(key, first.id)) == first.id
    for forged in (first.id, f"{first.id}.00", domain.sign("another key", first.id), ""):
        with pytest.raises(NotFound):
            domain.survey_id_of(key, forged)


def test_a_later_answer_replaces_the_earlier_one_and_each_is_an_event(sessions):
    with sessions.begin() as session:
        survey_id = domain.open_survey(session, ticket(), NOW).id
    with sessions.begin() as session:
        first = domain.answer(session, survey_id, 2, None, NOW)
    with sessions.begin() as session:
        second = domain.answer(session, survey_id, 5, "  Quick and kind  ", NOW)
    with sessions.begin() as session:
        third = domain.answer(session, survey_id, 4, None, NOW)  # a later one-click keeps the comment
    assert (first["rating"], second["rating"], second["comment"]) == (2, 5, "Quick and kind")
    assert (third["rating"], third["comment"]) == (4, "Quick and kind")
    with sessions() as session:
        events = [row.envelope for row in session.scalars(select(Outbox).order_by(Outbox.seq))]
        assert domain.for_ticket(session, "HD-000007")["rating"] == 4
        assert domain.for_ticket(session, "HD-000999")["rating"] is None
    assert [(e["type"], e["source"], e["data"]["rating"]) for e in events] == [
        ("csat_submitted", "surveys", 2), ("csat_submitted", "surveys", 5), ("csat_submitted", "surveys", 4)]
    assert events[0]["data"]["replaces"] is None
    assert events[1]["data"]["replaces"] == events[0]["data"]["answer_id"]
    assert events[1]["data"]["contact_id"] == 12 and events[1]["data"]["team"] == "network"


@pytest.mark.parametrize("rating, comment", [(0, None), (6, None), ("5", None), (True, None), (3, "x" * 5001)])
def test_a_wrong_answer_is_refused_and_nothing_is_recorded(sessions, rating, comment):
    with sessions.begin() as session:
        survey_id = domain.open_survey(session, ticket(), NOW).id
    with pytest.raises(ValidationFailed), sessions.begin() as session:
        domain.answer(session, survey_id, rating, comment, NOW)
    with sessions() as session:
        assert session.scalars(select(Outbox)).all() == []
        assert domain.for_ticket(session, "HD-000007")["rating"] is None


def test_a_requester_whose_data_was_erased_is_asked_nothing():
    erased = ticket()
    erased["requester"] = {"email": "", "contact_id": 12}
    assert not domain.should_ask(SETTINGS, erased, "resolved")


def test_erasure_removes_the_address_and_comment_and_keeps_the_rating(sessions):
    from helpdesk_surveys import personal_data
    from helpdesk_surveys.models import Survey
    with sessions.begin() as session:
        survey_id = domain.open_survey(session, ticket(), NOW).id
        domain.open_survey(session, ticket(number="HD-000008") | {"requester": {"email": "bo@example.se"}}, NOW)
    with sessions.begin() as session:
        domain.answer(session, survey_id, 2, "Eva here: the agent was rude", NOW, None)
    with sessions() as session:
        exported = personal_data.export(session, ["eva@example.se"], [], 12)
    assert [(s["ticket_number"], s["comment"]) for s in exported["csat"]] == [("HD-000007", "Eva here: the agent was rude")]
    for _ in range(2):  # idempotent
        with sessions.begin() as session:
            personal_data.erase(session, ["eva@example.se"], ["HD-000007"], 12)
    with sessions() as session:
        rows = {s.ticket_number: (s.email, s.comment, s.rating, s.contact_id) for s in session.scalars(select(Survey))}
    assert rows == {"HD-000007": ("", None, 2, None), "HD-000008": ("bo@example.se", None, None, None)}


def test_an_erased_ticket_is_remembered_by_its_number_only(sessions):
    from helpdesk_surveys import personal_data
    for _ in range(2):
        with sessions.begin() as session:
            personal_data.erase(session, ["eva@example.se"], ["HD-000007"], 12)
    with sessions() as session:
        assert personal_data.erased(session, "HD-000007") and not personal_data.erased(session, "HD-000008")


def test_a_resolution_handled_after_the_erasure_asks_nobody(sessions):
    """The handler itself (nameko's worker_factory: no broker; intake's RPC is a mock standing in for intake)."""
    from nameko.testing.services import worker_factory
    from helpdesk_surveys import personal_data
    from helpdesk_surveys.models import NpsSurvey, Survey
    from helpdesk_surveys.service import SurveysService
    with sessions.begin() as session:
        personal_data.erase(session, ["eva@example.se"], ["HD-000007"], 12)
    service = worker_factory(SurveysService, db=sessions, settings=domain.Settings(
        public_url="https://help.example.org/", nps_interval=3600))
    service.on_status_changed({"id": "e1", "data": {"ticket": ticket(), "to_status": "resolved"}})
    service.intake.send_account_mail.assert_not_called()
    with sessions() as session:
        assert session.scalars(select(Survey)).all() == [] and session.scalars(select(NpsSurvey)).all() == []
    service.on_status_changed({"id": "e2", "data": {"ticket": ticket("HD-000008"), "to_status": "resolved"}})
    assert service.intake.send_account_mail.call_count == 2  # another ticket: CSAT and NPS asked
