"""Changing a ticket in the tests as the platform does: assignee, team and tier through routing's decisions.

Routing is the one writer of those three fields (``route_by_hand``); the tickets service applies its
decisions. These tests exercise the tickets service alone, so :func:`decided_by_hand` stands in for
routing: it builds the decision routing announces for a change made by hand (its shape is checked against
the event catalogue in test_routing_decisions.py).
"""
from sqlalchemy import select

from helpdesk_common.contracts import given_fields
from helpdesk_common.contracts.tickets import TicketChanges
from helpdesk_common.events import new_event
from helpdesk_tickets import domain
from helpdesk_tickets.models import Ticket

ROUTED = ("assignee", "team", "tier")


def decided_by_hand(number, actor, sequence, assignee, team, tier, at="2026-12-07T10:00:00+00:00"):
    """The envelope routing announces when a person sets a ticket's assignee, team or tier: the ticket's
    whole routing state after the change, numbered."""
    common = {"ticket_number": number, "team": team, "tier": tier, "reason": "set by hand", "sequence": sequence,
              "actor": actor}
    if assignee is None:
        return new_event("ticket_queued", {**common, "queued_at": at})
    return new_event("ticket_assigned", {**common, "assignee": assignee, "agent": None, "manual": True,
                                         "assigned_at": at})


def change_ticket(sessions, rules, viewer, number, **changes):
    """``domain.change_ticket`` with ``changes``; assignee, team and tier given go as routing's decision."""
    given_fields(TicketChanges.model_validate(changes), domain.CHANGEABLE, domain.NOT_NULL)  # nulls refused first
    routed = {field: changes.pop(field) for field in ROUTED if field in changes}
    with sessions.begin() as session:
        decisions = []
        ticket = session.scalar(select(Ticket).where(Ticket.number == number)) if routed else None
        if ticket is not None:
            state = {"assignee": ticket.assignee, "team": ticket.team, "tier": ticket.tier, **routed}
            decisions = [decided_by_hand(number, viewer.actor, ticket.routing_sequence + 1, **state)]
        return domain.change_ticket(session, number, TicketChanges.model_validate(changes), viewer, rules,
                                    decisions=decisions)
