"""Routing's decisions (ticket_assigned, ticket_queued, ticket_escalated) applied to tickets, once each."""
import uuid

import pytest

from helpdesk_common.contracts.tickets import Viewer
from helpdesk_common.errors import NotFound
from tickets import domain

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
    queued = apply(sessions, rules, decision("ticket_queued", number))
    assert queued["assignee"] is None and queued["team"] == "billing"
    escalated = apply(sessions, rules, decision("ticket_escalated", number))
    assert (escalated["tier"], escalated["team"]) == (2, "billing-l2")


def test_a_decision_about_an_unknown_ticket_is_refused(sessions, rules):
    with pytest.raises(NotFound):
        apply(sessions, rules, decision("ticket_assigned", "HD-999999"))
