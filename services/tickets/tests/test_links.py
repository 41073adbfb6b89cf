"""Related tickets and merging a duplicate, on a real (SQLite, or PostgreSQL) database."""
import pytest
from sqlalchemy import select

from helpdesk_common.contracts.tickets import NewMessage, TicketMerged, Viewer
from helpdesk_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from helpdesk_tickets import domain, links
from helpdesk_tickets.models import HistoryRecord, Ticket


def _reply(sessions, rules, viewer, number, body, visibility="public"):
    with sessions.begin() as session:
        return domain.add_message(session, number, NewMessage(body=body, visibility=visibility), viewer, rules)


def _history(sessions, number):
    with sessions() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        return [(r.field, r.old, r.new) for r in session.scalars(
            select(HistoryRecord).where(HistoryRecord.ticket_id == ticket.id).order_by(HistoryRecord.id))]


def test_linking_shows_on_both_tickets_once_and_is_announced(sessions, rules, open_ticket, admin, outbox_rows):
    first, second = open_ticket()["number"], open_ticket()["number"]
    with sessions.begin() as session:
        answer = links.link(session, first, second, admin, rules)
    assert [(link["number"], link["kind"]) for link in answer] == [(second, "related")]
    with sessions.begin() as session:  # again: nothing new
        links.link(session, second, first, admin, rules)
    with sessions() as session:
        assert [(link["number"], link["kind"]) for link in links.links_of(session, second, admin)] == [(first, "related")]
    assert ("linked", None, second) in _history(sessions, first)
    assert ("linked", None, first) in _history(sessions, second)
    assert [row.envelope["data"]["other_number"] for row in outbox_rows("tickets_linked")] == [second]


def test_a_ticket_is_not_linked_to_itself_nor_by_a_customer(sessions, rules, open_ticket, admin, customer):
    number, other = open_ticket()["number"], open_ticket()["number"]
    with sessions.begin() as session, pytest.raises(ValidationFailed) as refused:
        links.link(session, number, number, admin, rules)
    assert refused.value.code == "same_ticket"
    with sessions.begin() as session, pytest.raises(Forbidden):
        links.link(session, number, other, customer, rules)


def test_an_agent_of_another_team_cannot_link_or_merge_into_a_ticket_it_cannot_see(sessions, rules, open_ticket):
    mine, hidden = open_ticket(team="network")["number"], open_ticket(team="billing")["number"]
    agent = Viewer(actor="al", role="agent", teams=["network"])
    for act in (links.link, links.merge):
        with sessions.begin() as session, pytest.raises(NotFound):
            act(session, mine, hidden, agent, rules)
    with sessions() as session:
        assert session.scalar(select(Ticket.status).where(Ticket.number == mine)) == "new"


def test_merging_closes_the_duplicate_with_a_pointer_and_keeps_both_customers_words(
        sessions, rules, open_ticket, admin, customer, outbox_rows):
    survivor = open_ticket(subject="VPN down", requester={"email": "dave@example.com"})["number"]
    duplicate = open_ticket(subject="VPN down too", description="Mine too since 9.")["number"]
    _reply(sessions, rules, customer, duplicate, "Any news?")
    _reply(sessions, rules, admin, duplicate, "Looking into it.")
    with sessions.begin() as session:
        view = links.merge(session, duplicate, survivor, admin, rules)
    assert view["number"] == survivor and view["status"] == "new"
    with sessions() as session:
        merged = domain.ticket_view(session.scalar(select(Ticket).where(Ticket.number == duplicate)))
        kept = domain.list_messages(session, survivor, admin)
        assert [(link["number"], link["kind"]) for link in links.links_of(session, duplicate, admin)] == [
            (survivor, "merged_into")]
        assert [(link["number"], link["kind"]) for link in links.links_of(session, survivor, admin)] == [
            (duplicate, "merged_from")]
    assert merged["status"] == "closed" and merged["merged_into"] == survivor and merged["closed_at"]
    assert [(m["visibility"], m["body"]) for m in kept] == [
        ("internal", f"[{duplicate}] Mine too since 9."), ("internal", f"[{duplicate}] Any news?"),
        ("internal", f"[{duplicate}] Looking into it.")]
    assert ("merged_into", None, survivor) in _history(sessions, duplicate)
    assert ("status", "new", "closed") in _history(sessions, duplicate)
    assert ("merged_from", None, {"ticket": duplicate, "messages": 3}) in _history(sessions, survivor)
    (event,) = outbox_rows("ticket_merged")
    data = TicketMerged.model_validate(event.envelope["data"])
    assert (data.merged.number, data.survivor.number, data.copied_messages) == (duplicate, survivor, 3)
    assert [row.envelope["data"]["to_status"] for row in outbox_rows("status_changed")] == ["closed"]
    # The survivor's customer sees none of the other customer's words.
    dave = Viewer(actor="dave", role="customer", email="dave@example.com")
    with sessions() as session:
        assert domain.list_messages(session, survivor, dave) == []


def test_a_customers_later_reply_to_the_merged_ticket_reaches_the_survivors_agents_only(
        sessions, rules, open_ticket, admin, customer, outbox_rows):
    survivor = open_ticket(requester={"email": "dave@example.com"})["number"]
    duplicate = open_ticket()["number"]
    with sessions.begin() as session:
        links.merge(session, duplicate, survivor, admin, rules)
    _reply(sessions, rules, customer, duplicate, "Still down here.")  # e.g. an answer to an old mail
    _reply(sessions, rules, admin, duplicate, "Agents reply on the survivor.")  # staff: no copy
    with sessions() as session:
        kept = domain.list_messages(session, survivor, admin)
        mine = domain.list_messages(session, duplicate, customer)
        dave = domain.list_messages(session, survivor, Viewer(actor="dave", role="customer", email="dave@example.com"))
    assert (kept[-1]["visibility"], kept[-1]["body"]) == ("internal", f"[{duplicate}] Still down here.")
    assert not any("Agents reply" in m["body"] for m in kept)
    assert [m["body"] for m in mine] == ["Still down here.", "Agents reply on the survivor."]  # kept where it came
    assert dave == []
    assert [row.envelope["subject"] for row in outbox_rows("message_added")][-3:] == [duplicate, survivor, duplicate]


def test_a_merged_or_closed_ticket_cannot_be_merged_again(sessions, rules, open_ticket, admin):
    survivor, duplicate, third = (open_ticket()["number"] for _ in range(3))
    with sessions.begin() as session:
        links.merge(session, duplicate, survivor, admin, rules)
    for number, into, code in ((duplicate, third, "already_merged"), (third, duplicate, "ticket_closed")):
        with sessions.begin() as session, pytest.raises(Conflict) as refused:
            links.merge(session, number, into, admin, rules)
        assert refused.value.code == code
    with sessions() as session:
        assert session.scalar(select(Ticket.status).where(Ticket.number == third)) == "new"
