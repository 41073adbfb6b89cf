"""Problems: incidents linked to a problem ticket, one update to every customer, solved together (SQLite)."""
import dataclasses

import pytest
from sqlalchemy import select

from helpdesk_common.contracts.tickets import ProblemRequest, ProblemUpdate, TicketChanges, Viewer
from helpdesk_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from helpdesk_tickets import domain, problems
from helpdesk_tickets.models import Message, Ticket

AGENT = Viewer(actor="alan", role="agent", email="alan@example.com", teams=["support"])


def _three_incidents(open_ticket):
    customers = [("carol@example.com", "email"), ("dave@example.com", "web"), ("erin@example.com", "chat")]
    return [open_ticket(subject="Checkout fails with error 503", requester={"email": email}, channel=channel,
                        team="support")["number"] for email, channel in customers]


def _problem(sessions, rules, incidents, viewer=AGENT):
    with sessions.begin() as session:
        return problems.create_problem(session, ProblemRequest(
            subject="Checkout down (error 503)", description="Payment provider outage.", incidents=incidents),
            viewer, rules)


def _public(sessions, number):
    with sessions() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        return [m.body for m in session.scalars(select(Message).where(Message.ticket_id == ticket.id,
                                                                      Message.visibility == "public"))]


def _status(sessions, number):
    with sessions() as session:
        return session.scalar(select(Ticket.status).where(Ticket.number == number))


def test_a_problem_with_three_incidents_updates_each_customer_once_and_is_solved_with_them(
        sessions, rules, open_ticket, outbox_rows):
    incidents = _three_incidents(open_ticket)
    answer = _problem(sessions, rules, incidents)
    problem = answer["problem"]["number"]
    assert answer["problem"]["tags"] == ["problem"] and answer["problem"]["requester"]["email"] == "alan@example.com"
    assert [i["number"] for i in answer["incidents"]] == incidents
    linked = [r.envelope["data"] for r in outbox_rows("tickets_linked")]
    assert [(d["ticket_number"], d["other_number"], d["kind"]) for d in linked] == [
        (problem, n, "incident") for n in incidents]

    with sessions.begin() as session:
        sent = problems.send_update(session, problem, ProblemUpdate(body="We are on it; fixed within the hour."),
                                    AGENT, rules)
    assert sent["sent_to"] == incidents
    for number in incidents:  # one public reply each: intake sends it on the ticket's own channel
        assert _public(sessions, number) == ["We are on it; fixed within the hour."]
    assert _public(sessions, problem) == []  # the problem's own note is internal
    replies = [r.envelope["data"] for r in outbox_rows("message_added")
               if r.envelope["data"]["message"]["visibility"] == "public"]
    assert sorted((d["ticket"]["number"], d["ticket"]["channel"]) for d in replies) == sorted(
        zip(incidents, ["email", "web", "chat"]))

    with sessions.begin() as session:
        domain.change_ticket(session, problem, TicketChanges(status="resolved"), AGENT, rules)
    assert [_status(sessions, n) for n in [problem, *incidents]] == ["resolved"] * 4
    solved = {r.envelope["data"]["ticket"]["number"] for r in outbox_rows("status_changed")
              if r.envelope["data"]["to_status"] == "resolved"}
    assert solved == {problem, *incidents}


def test_solving_incidents_with_the_problem_can_be_turned_off(sessions, rules, open_ticket):
    incidents = _three_incidents(open_ticket)
    own = dataclasses.replace(rules, problem_solves_incidents=False)
    problem = _problem(sessions, own, incidents)["problem"]["number"]
    with sessions.begin() as session:
        domain.change_ticket(session, problem, TicketChanges(status="resolved"), AGENT, own)
    assert [_status(sessions, n) for n in incidents] == ["new"] * 3


def test_an_update_skips_solved_incidents_and_a_closed_incident_stays_closed(sessions, rules, open_ticket):
    incidents = _three_incidents(open_ticket)
    problem = _problem(sessions, rules, incidents)["problem"]["number"]
    with sessions.begin() as session:
        domain.change_ticket(session, incidents[0], TicketChanges(status="closed"), AGENT, rules)
    with sessions.begin() as session:
        sent = problems.send_update(session, problem, ProblemUpdate(body="Fixed."), AGENT, rules)
    assert sent["sent_to"] == incidents[1:] and _public(sessions, incidents[0]) == []
    with sessions.begin() as session:
        domain.change_ticket(session, problem, TicketChanges(status="resolved"), AGENT, rules)
    assert [_status(sessions, n) for n in incidents] == ["closed", "resolved", "resolved"]


def test_an_incident_belongs_to_one_problem_and_a_problem_is_no_incident(sessions, rules, open_ticket):
    incidents = _three_incidents(open_ticket)
    first = _problem(sessions, rules, incidents[:2])["problem"]["number"]
    with pytest.raises(Conflict) as refused:
        _problem(sessions, rules, incidents[1:])
    assert refused.value.code == "already_incident"
    with pytest.raises(Conflict) as refused:
        _problem(sessions, rules, [first])
    assert refused.value.code == "problem_not_incident"
    with sessions.begin() as session, pytest.raises(ValidationFailed) as refused:
        problems.link_incidents(session, first, [first], AGENT, rules)
    assert refused.value.code == "same_ticket"
    with sessions.begin() as session:  # linking again changes nothing
        again = problems.link_incidents(session, first, incidents[:2], AGENT, rules)
    assert [i["number"] for i in again["incidents"]] == incidents[:2]


def test_only_agents_make_problems_of_tickets_they_may_see(sessions, rules, open_ticket, customer):
    incidents = _three_incidents(open_ticket)
    hidden = open_ticket(team="billing")["number"]
    with pytest.raises(Forbidden):
        _problem(sessions, rules, incidents, viewer=customer)
    with pytest.raises(NotFound):
        _problem(sessions, rules, incidents + [hidden])
    with sessions() as session:  # nothing half-written
        assert session.scalar(select(Ticket).where(Ticket.tags.is_not(None), Ticket.subject.like("Checkout down%"))) is None
    with pytest.raises(ValidationFailed) as refused:
        _problem(sessions, rules, incidents, viewer=Viewer(actor="bot", role="system"))
    assert refused.value.code == "requester_needed"


def test_the_links_show_incidents_on_the_problem_and_the_problem_on_each_incident(sessions, rules, open_ticket):
    from helpdesk_tickets import links
    incidents = _three_incidents(open_ticket)
    problem = _problem(sessions, rules, incidents)["problem"]["number"]
    with sessions() as session:
        assert [(l["number"], l["kind"]) for l in links.links_of(session, problem, AGENT)] == [
            (n, "incident") for n in incidents]
        assert [(l["number"], l["kind"]) for l in links.links_of(session, incidents[0], AGENT)] == [(problem, "problem")]
