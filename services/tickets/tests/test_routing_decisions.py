"""Routing's decisions (ticket_assigned, ticket_queued, ticket_escalated) applied to tickets, once each."""
import uuid

import pytest
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select, update
from sqlalchemy.orm.exc import StaleDataError

from helpdesk_common.contracts.tickets import TicketChanges, Viewer
from helpdesk_common.errors import HelpdeskError, NotFound
from helpdesk_tickets import domain
from ticket_changes import change_ticket
from helpdesk_tickets.models import Ticket

AGENT = {"id": 7, "name": "Ada", "email": "ada@corp.example"}


def decision(kind, number, **data):
    base = {"ticket_assigned": {"assignee": "agent-7", "agent": AGENT, "team": "billing", "tier": 1,
                                "reason": "skills and load", "assigned_at": "2026-11-22T10:00:00+00:00"},
            "ticket_queued": {"team": "billing", "tier": 1, "reason": "no agent free",
                              "queued_at": "2026-11-22T10:00:00+00:00"},
            "ticket_escalated": {"from_tier": 1, "to_tier": 2, "to_team": "billing-l2", "trigger": "sla_breach",
                                 "reason": "resolution SLA breached", "actor": "routing",
                                 "escalated_at": "2026-11-22T10:00:00+00:00"}}[kind]
    return {"id": str(uuid.uuid4()), "type": kind, "source": "routing", "correlation_id": "c-1",
            "data": {"ticket_number": number, **base, **data}}


def apply(sessions, rules, envelope):
    with sessions.begin() as session:
        return domain.apply_routing(session, envelope, rules)


def history(sessions, number):
    with sessions() as session:
        return domain.history(session, number, Viewer(actor="t", role="admin"))


def test_an_assignment_sets_assignee_team_and_priority_and_keeps_the_reason(sessions, rules, open_ticket,
                                                                           outbox_rows):
    number = open_ticket()["number"]
    view = apply(sessions, rules, decision("ticket_assigned", number, priority="high"))
    assert (view["assignee"], view["team"], view["priority"]) == ("agent-7", "billing", "high")
    entries = history(sessions, number)
    assert {e["field"] for e in entries if e["actor"] == "routing"} >= {"assignee", "team", "priority",
                                                                        "ticket_assigned"}
    assert next(e for e in entries if e["field"] == "ticket_assigned")["new"]["reason"] == "skills and load"
    assert [row.envelope["data"]["ticket"]["assignee"] for row in outbox_rows("ticket_updated")] == ["agent-7"]


def test_the_same_decision_delivered_twice_takes_effect_once(sessions, rules, open_ticket, outbox_rows):
    number = open_ticket()["number"]
    envelope = decision("ticket_assigned", number)
    assert apply(sessions, rules, envelope) is not None
    assert apply(sessions, rules, envelope) is None
    assert len(outbox_rows("ticket_updated")) == 1
    assert [e["field"] for e in history(sessions, number)].count("ticket_assigned") == 1


def test_queueing_clears_the_assignee_and_escalation_raises_the_tier(sessions, rules, open_ticket):
    number = open_ticket()["number"]
    apply(sessions, rules, decision("ticket_assigned", number))
    queued = apply(sessions, rules, decision("ticket_queued", number, previous_assignee="agent-7"))
    assert queued["assignee"] is None and queued["team"] == "billing"
    escalated = apply(sessions, rules, decision("ticket_escalated", number))
    assert (escalated["tier"], escalated["team"]) == (2, "billing-l2")


@pytest.mark.parametrize("batched", [False, True])
def test_a_decision_overtaken_by_a_newer_one_changes_nothing(sessions, rules, open_ticket, batched):
    """Routing numbers its decisions per ticket: an agent takes the new ticket by hand (decision 2, applied at
    once through the PATCH) before routing's decision on the new ticket (1, a queueing) arrives; that one
    must neither unassign the agent nor move the ticket back to the queue's team."""
    number = open_ticket()["number"]
    change_ticket(sessions, rules, Viewer(actor="bob", role="agent"), number, assignee="bob", team="desk")
    with sessions() as session:  # the helper made decision 1 (no routing decision was applied before)
        assert session.scalar(select(Ticket.routing_sequence).where(Ticket.number == number)) == 1
    with sessions.begin() as session:
        session.execute(update(Ticket).where(Ticket.number == number).values(routing_sequence=2))
    queued = decision("ticket_queued", number, team="network", sequence=1)  # made on the new ticket
    view = apply_batch(sessions, rules, [queued])[0] if batched else apply(sessions, rules, queued)
    assert (view["assignee"], view["team"]) == ("bob", "desk")
    newer = decision("ticket_assigned", number, team="network", sequence=3)
    view = apply_batch(sessions, rules, [newer])[0] if batched else apply(sessions, rules, newer)
    assert (view["assignee"], view["team"]) == ("agent-7", "network")
    with sessions() as session:
        assert session.scalar(select(Ticket.routing_sequence).where(Ticket.number == number)) == 3


def test_decisions_of_one_batch_apply_in_sequence_order_whatever_order_they_come_in(sessions, rules, open_ticket):
    number = open_ticket()["number"]
    second = decision("ticket_assigned", number, assignee="agent-9", sequence=2)
    first = decision("ticket_queued", number, sequence=1)
    views = apply_batch(sessions, rules, [second, first])
    assert views[0]["assignee"] == "agent-9" and views[1]["assignee"] == "agent-9"


def test_a_decision_without_a_number_applies_as_it_comes(sessions, rules, open_ticket):
    """From a routing older than the numbering (in flight during an upgrade): applied, and a numbered one after it too."""
    number = open_ticket()["number"]
    assert apply(sessions, rules, decision("ticket_assigned", number))["assignee"] == "agent-7"
    assert apply(sessions, rules, decision("ticket_queued", number, sequence=1))["assignee"] is None


def test_a_decision_about_an_unknown_ticket_is_refused(sessions, rules):
    with pytest.raises(NotFound):
        apply(sessions, rules, decision("ticket_assigned", "HD-999999"))


# --- the write-back's group commit: many decisions in one transaction ------------------------------

def shown(view):
    """What routing's decisions change in a ticket's view, with the version it got."""
    return {key: view[key] for key in ("number", "assignee", "team", "tier", "priority", "version")}


def apply_batch(sessions, rules, envelopes):
    with sessions.begin() as session:
        return domain.apply_routing_batch(session, envelopes, rules)


def test_a_batch_gives_each_decision_the_same_effect_as_one_by_one(sessions, rules, open_ticket, outbox_rows):
    numbers = [open_ticket()["number"] for _ in range(4)]
    decisions = [decision("ticket_assigned", numbers[0], priority="high"), decision("ticket_queued", numbers[1]),
                 decision("ticket_escalated", numbers[2]), decision("ticket_assigned", numbers[3], assignee="agent-9")]
    views = apply_batch(sessions, rules, decisions)
    assert [(v["assignee"], v["team"], v["tier"], v["priority"]) for v in views] == [
        ("agent-7", "billing", 1, "high"), (None, "billing", 1, "normal"), (None, "billing-l2", 2, "normal"),
        ("agent-9", "billing", 1, "normal")]
    updates = {row.envelope["subject"]: row.envelope for row in outbox_rows("ticket_updated")}
    assert set(updates) == set(numbers)
    assert [shown(updates[n]["data"]["ticket"]) for n in numbers] == [shown(v) for v in views]
    assert updates[numbers[0]]["correlation_id"] == "c-1"
    assert {update["data"]["actor"] for update in updates.values()} == {"routing"}  # routing skips its echo
    first = history(sessions, numbers[0])
    assert {e["field"] for e in first if e["actor"] == "routing"} == {"assignee", "team", "priority",
                                                                      "ticket_assigned"}
    assert next(e for e in first if e["field"] == "ticket_assigned")["new"]["reason"] == "skills and load"
    assert [e["field"] for e in history(sessions, numbers[2]) if e["actor"] == "routing"] == [
        "team", "tier", "ticket_escalated"]


def test_a_duplicate_in_the_batch_and_a_decision_applied_before_take_effect_once(sessions, rules, open_ticket,
                                                                                 outbox_rows):
    first, second = open_ticket()["number"], open_ticket()["number"]
    earlier = decision("ticket_assigned", first)
    apply(sessions, rules, earlier)
    twice = decision("ticket_queued", second)
    views = apply_batch(sessions, rules, [earlier, twice, dict(twice)])
    assert views[0] is None and views[2] is None  # repeats: already applied, or earlier in this batch
    assert views[1]["team"] == "billing"
    assert sorted(row.envelope["subject"] for row in outbox_rows("ticket_updated")) == sorted([first, second])
    assert [e["field"] for e in history(sessions, second)].count("ticket_queued") == 1
    assert [e["field"] for e in history(sessions, first)].count("ticket_assigned") == 1


def test_two_decisions_for_one_ticket_in_a_batch_announce_a_version_each(sessions, rules, open_ticket,
                                                                         outbox_rows):
    number = open_ticket()["number"]
    views = apply_batch(sessions, rules, [decision("ticket_assigned", number), decision("ticket_escalated", number)])
    assert views[0]["version"] < views[1]["version"]
    assert (views[0]["tier"], views[1]["tier"], views[1]["team"]) == (1, 2, "billing-l2")
    announced = [shown(row.envelope["data"]["ticket"]) for row in outbox_rows("ticket_updated")]
    assert announced == [shown(v) for v in views]


def test_a_bad_decision_fails_the_whole_batch_and_writes_nothing(sessions, rules, open_ticket, outbox_rows):
    number = open_ticket()["number"]
    good = decision("ticket_assigned", number)
    with pytest.raises(NotFound):
        apply_batch(sessions, rules, [good, decision("ticket_assigned", "HD-999999")])
    assert outbox_rows("ticket_updated") == []
    assert not [e for e in history(sessions, number) if e["actor"] == "routing"]
    assert apply_batch(sessions, rules, [good])[0]["assignee"] == "agent-7"  # alone (the collector's rerun) it works


def test_a_malformed_decision_is_refused_in_a_batch(sessions, rules, open_ticket):
    number = open_ticket()["number"]
    with pytest.raises((PydanticValidationError, HelpdeskError)):
        apply_batch(sessions, rules, [decision("ticket_assigned", number), decision("ticket_queued", number, tier=0)])


def test_a_ticket_changed_meanwhile_fails_the_version_check_and_nothing_is_written(sessions, rules, open_ticket,
                                                                                   admin):
    number, other = open_ticket()["number"], open_ticket()["number"]
    with sessions() as session:
        stale = domain.find_ticket(session, number, admin)  # read before the concurrent edit
        # Another replica saves the ticket in between (written beneath the session, which keeps its copy;
        # SQLite's single connection cannot hold a second transaction at once).
        session.execute(update(Ticket.__table__).where(Ticket.__table__.c.number == number)
                        .values(priority="urgent", version=Ticket.__table__.c.version + 1))
        with pytest.raises(StaleDataError):
            domain.apply_routing_batch(session, [decision("ticket_assigned", other),
                                                 decision("ticket_assigned", number)], rules)
        session.rollback()
        assert stale.version == 1  # the other replica's change was undone with it (written in this session)
    assert not [e for e in history(sessions, number) + history(sessions, other) if e["actor"] == "routing"]
    view = apply(sessions, rules, decision("ticket_assigned", number))  # the retry reads the ticket afresh
    assert (view["assignee"], view["version"]) == ("agent-7", 2)


def test_without_views_a_batch_announces_the_same_and_builds_views_only_for_changed_tickets(
        sessions, rules, open_ticket, outbox_rows, monkeypatch):
    numbers = [open_ticket()["number"] for _ in range(3)]
    with sessions() as session:
        team = domain.find_ticket(session, numbers[1], Viewer(actor="t", role="admin")).team
    built = []
    real_view = domain.ticket_view
    monkeypatch.setattr(domain, "ticket_view", lambda ticket, *a, **k: built.append(ticket.number) or real_view(
        ticket, *a, **k))
    repeat = decision("ticket_assigned", numbers[0])
    with sessions.begin() as session:  # the service's way: answers say applied (True) or repeat (None)
        answers = domain.apply_routing_batch(session, [
            repeat, dict(repeat), decision("ticket_queued", numbers[1], team=team), decision("ticket_escalated",
                                                                                             numbers[2])],
            rules, views=False)
    assert answers == [True, None, True, True]
    assert sorted(built) == sorted([numbers[0], numbers[2]])  # the queued ticket did not change: no view
    updates = {row.envelope["subject"]: row.envelope["data"] for row in outbox_rows("ticket_updated")}
    assert set(updates) == {numbers[0], numbers[2]}
    assert updates[numbers[0]]["ticket"]["assignee"] == "agent-7" and updates[numbers[2]]["ticket"]["tier"] == 2
    assert [e["field"] for e in history(sessions, numbers[1]) if e["actor"] == "routing"] == ["ticket_queued"]


def test_a_ticket_that_one_decision_leaves_alone_and_the_next_changes_is_changed_once(sessions, rules, open_ticket,
                                                                                      outbox_rows):
    first, second = open_ticket()["number"], open_ticket()["number"]
    with sessions() as session:
        team = domain.find_ticket(session, first, Viewer(actor="t", role="admin")).team
    with sessions.begin() as session:
        answers = domain.apply_routing_batch(session, [
            decision("ticket_queued", first, team=team), decision("ticket_assigned", first, team=team),
            decision("ticket_queued", second, team=team)], rules, views=False)
    assert answers == [True, True, True]
    [update] = outbox_rows("ticket_updated")
    assert update.envelope["subject"] == first
    assert update.envelope["data"]["ticket"]["assignee"] == "agent-7"
    assert update.envelope["data"]["ticket"]["version"] == 2
    assert [e["field"] for e in history(sessions, first) if e["actor"] == "routing"] == [
        "ticket_queued", "assignee", "ticket_assigned"]
    assert [e["field"] for e in history(sessions, second) if e["actor"] == "routing"] == ["ticket_queued"]
    with sessions() as session:
        assert domain.find_ticket(session, second, Viewer(actor="t", role="admin")).version == 1
