"""Canned replies: shared and personal, placeholders filled from the ticket, on a real database."""
import pytest

from helpdesk_common.contracts.tickets import NewCannedReply, Viewer
from helpdesk_common.errors import Forbidden, NotFound, ValidationFailed
from helpdesk_tickets import canned


def _make(sessions, rules, viewer, **fields):
    command = NewCannedReply.model_validate({"title": "Thanks", "body": "Hi {{customer_name}}", **fields})
    with sessions.begin() as session:
        return canned.create(session, command, viewer, rules.workflow)


def test_shared_replies_are_for_everyone_personal_ones_for_their_author(sessions, rules, admin, agent):
    shared = _make(sessions, rules, admin, title="Shared", shared=True)
    mine = _make(sessions, rules, agent, title="Mine")
    other = Viewer(actor="bea", role="agent")
    with sessions() as session:
        assert [r["title"] for r in canned.list_for(session, agent)] == ["Mine", "Shared"]
        assert [r["title"] for r in canned.list_for(session, other)] == ["Shared"]
    assert (shared["shared"], shared["owner"], mine["shared"], mine["owner"]) == (True, None, False, "alan")
    with sessions.begin() as session, pytest.raises(NotFound):
        canned.delete(session, mine["id"], other)
    with sessions.begin() as session, pytest.raises(Forbidden) as refused:
        canned.delete(session, shared["id"], agent)
    assert refused.value.code == "admins_only"
    with sessions.begin() as session:
        canned.delete(session, mine["id"], agent)
    with sessions() as session:
        assert [r["title"] for r in canned.list_for(session, agent)] == ["Shared"]


def test_only_admins_make_shared_ones_and_customers_none(sessions, rules, agent, customer):
    with pytest.raises(Forbidden) as refused:
        _make(sessions, rules, agent, shared=True)
    assert refused.value.code == "admins_only"
    with pytest.raises(Forbidden):
        _make(sessions, rules, customer)


@pytest.mark.parametrize("fields, code", [({"body": "Hi {{first_name}}"}, "unknown_placeholder"),
                                          ({"status": "archived"}, "validation_failed")])
def test_unknown_placeholders_and_statuses_are_refused_when_made(sessions, rules, admin, fields, code):
    with pytest.raises(ValidationFailed) as refused:
        _make(sessions, rules, admin, **fields)
    assert refused.value.code == code


def test_a_reply_is_filled_in_from_the_ticket_and_keeps_html_as_text(sessions, rules, open_ticket, admin):
    number = open_ticket(requester={"email": "eva@example.se", "name": "Eva <b>Å</b>"}, subject="VPN")["number"]
    reply = _make(sessions, rules, admin, body="Hi {{ customer_name }}, about {{ticket_number}} ({{ticket_subject}}): "
                                               "{{agent_name}} here. {{ customer_email }}",
                  status="pending", priority="low")
    with sessions() as session:
        filled = canned.render(session, reply["id"], number, admin, agent_name="Ada")
    assert filled["body"] == f"Hi Eva <b>Å</b>, about {number} (VPN): Ada here. eva@example.se"
    assert (filled["status"], filled["priority"]) == ("pending", "low")


def test_a_reply_is_not_filled_in_for_a_ticket_the_agent_cannot_see(sessions, rules, open_ticket, admin):
    number = open_ticket(team="billing")["number"]
    reply = _make(sessions, rules, admin, shared=True)
    with sessions() as session, pytest.raises(NotFound) as refused:
        canned.render(session, reply["id"], number, Viewer(actor="al", role="agent", teams=["network"]))
    assert refused.value.code == "ticket_not_found"
