"""The surveys service's status handler with worker_factory (no broker): a chat, social or phone ticket gets
its survey as a public message on the ticket, once. The tickets and intake RPC proxies are stand-ins (the
real calls are made in tests/ui/test_portal_browser.py's whole platform); the database is real SQLite."""
from unittest import mock

from nameko.testing.services import worker_factory
from sqlalchemy.orm import sessionmaker

from helpdesk_common.adapters.database import engine_for
from helpdesk_surveys import domain
from helpdesk_surveys.migrate import upgrade
from helpdesk_surveys.service import SURVEYS_VIEWER, SurveysService


def _service(tmp_path):
    url = f"sqlite:///{tmp_path / 'surveys.db'}"
    upgrade(url)
    sessions = sessionmaker(engine_for(url), expire_on_commit=False)
    db = mock.Mock(side_effect=sessions)
    db.begin = sessions.begin
    return worker_factory(SurveysService, db=db, settings=domain.Settings(public_url="https://help.example.org"))


def _event(channel):
    return {"id": "e-1", "type": "status_changed", "data": {"to_status": "resolved", "ticket": {
        "number": "HD-000009", "subject": "Printer", "channel": channel, "language": "sv", "team": None,
        "assignee": "agent-1", "requester": {"email": "eva@example.se", "contact_id": 3}}}}


def test_a_chat_ticket_is_asked_by_a_message_on_the_ticket_once(tmp_path):
    service = _service(tmp_path)
    service.on_status_changed(_event("chat"))
    (call,) = service.tickets.add_message.call_args_list
    number, message, viewer, key = call.args
    assert number == "HD-000009" and viewer == SURVEYS_VIEWER and key.startswith("csat:")
    assert "/help/satisfaction/" in message["body"] and message["visibility"] == "public"
    service.intake.send_account_mail.assert_not_called()
    service.on_status_changed(_event("chat"))  # the event again, or a later resolution: asked once
    assert service.tickets.add_message.call_count == 1


def test_a_web_ticket_is_still_asked_by_mail(tmp_path):
    service = _service(tmp_path)
    service.on_status_changed(_event("web"))
    service.tickets.add_message.assert_not_called()
    assert service.intake.send_account_mail.call_count == 1
