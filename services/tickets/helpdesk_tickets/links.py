"""Related tickets and merging a duplicate into another, as plain functions of a session (no nameko).

A link is written for both tickets (two ``TicketLink`` rows), so each reads its own side. Merging closes the
duplicate with a pointer to the survivor (``Ticket.merged_into``) and copies its customer's words (the
request and every message) to the survivor as internal notes: agents working the survivor have both
customers' messages, while neither customer ever sees the other's (the survivor's public conversation is
what its own customer reads in the portal and gets by mail). Both histories record it; events go through
the outbox in the same transaction.
"""
from sqlalchemy import select

from helpdesk_common.errors import Conflict, Forbidden, ValidationFailed
from helpdesk_common.events import new_event
from helpdesk_common.database import utcnow
from helpdesk_common.outbox import stage

from .domain import STAFF, _publish, _record, _visible, find_ticket, iso, sync_clocks, ticket_view
from .models import Message, Outbox, Ticket, TicketLink


def _staff_only(viewer):
    if viewer.role not in STAFF:
        raise Forbidden("Only agents link or merge tickets.", code="agents_only")


def _two_tickets(session, number, other, viewer):
    """Both tickets, locked in id order (two merges crossing each other never deadlock); each one the
    viewer may not see answers as missing."""
    if str(number) == str(other):
        raise ValidationFailed("A ticket cannot be linked to or merged into itself; give another ticket's number.",
                               code="same_ticket", details=[{"field": "other", "code": "same_ticket",
                                                            "message": "another ticket's number"}])
    first = find_ticket(session, number, viewer)
    second = find_ticket(session, other, viewer)
    for ticket in sorted((first, second), key=lambda t: t.id):
        find_ticket(session, ticket.number, viewer, for_update=True)
    return first, second


def _add_link(session, ticket, other, kind, actor, now):
    exists = session.scalar(select(TicketLink.id).where(TicketLink.ticket_id == ticket.id,
                                                        TicketLink.other_id == other.id, TicketLink.kind == kind))
    if exists is None:
        session.add(TicketLink(ticket_id=ticket.id, other_id=other.id, kind=kind, actor=actor, created_at=now))
    return exists is None


def link(session, number, other, viewer, rules, now=None):
    """Link two tickets as related (both sides; linking again changes nothing). Answers the links of ``number``."""
    _staff_only(viewer)
    ticket, other_ticket = _two_tickets(session, number, other, viewer)
    now = now or utcnow()
    if _add_link(session, ticket, other_ticket, "related", viewer.actor, now):
        _add_link(session, other_ticket, ticket, "related", viewer.actor, now)
        _record(session, ticket, viewer, "linked", None, other_ticket.number, now)
        _record(session, other_ticket, viewer, "linked", None, ticket.number, now)
        stage(session, Outbox, new_event("tickets_linked", {"ticket_number": ticket.number,
                                                            "other_number": other_ticket.number, "actor": viewer.actor},
                                         correlation_id=viewer.correlation_id, subject=ticket.number))
    session.flush()
    return links_of(session, number, viewer)


def links_of(session, number, viewer):
    """The tickets linked to ``number`` that the viewer may see, oldest link first."""
    _staff_only(viewer)
    ticket = find_ticket(session, number, viewer)
    rows = session.execute(_visible(select(TicketLink, Ticket).join(Ticket, Ticket.id == TicketLink.other_id)
                                    .where(TicketLink.ticket_id == ticket.id), viewer).order_by(TicketLink.id))
    return [{"number": other.number, "subject": other.subject, "status": other.status, "kind": row.kind,
             "linked_at": iso(row.created_at), "actor": row.actor} for row, other in rows]


def _closed_status(workflow):
    return next(status for status in workflow.statuses if workflow.category(status) == "closed")


def merge(session, number, into, viewer, rules, now=None):
    """Merge ticket ``number`` (a duplicate) into ``into``; answers the survivor's view.

    The duplicate is closed whatever its workflow says (a merge is not a step of the workflow: the request
    lives on in the survivor), with ``merged_into`` pointing there; its request and messages are copied to
    the survivor as internal notes, in their order, each naming the ticket it came from."""
    _staff_only(viewer)
    duplicate, survivor = _two_tickets(session, number, into, viewer)
    workflow = rules.workflow
    if duplicate.merged_into:
        raise Conflict(f"Ticket {duplicate.number} was already merged into {duplicate.merged_into}.",
                       code="already_merged")
    for ticket, role in ((duplicate, "merged"), (survivor, "kept")):
        if workflow.category(ticket.status) == "closed" or ticket.merged_into:
            raise Conflict(f"Ticket {ticket.number} is closed; only an open ticket can be {role} "
                           "(reopen it, or choose another).", code="ticket_closed")
    now = now or utcnow()
    words = [(duplicate.requester_email or "customer", "customer", duplicate.description, duplicate.created_at)]
    words += [(m.author, m.author_role, m.body, m.created_at) for m in session.scalars(
        select(Message).where(Message.ticket_id == duplicate.id).order_by(Message.id))]
    for author, role, body, at in words:
        session.add(Message(ticket_id=survivor.id, visibility="internal", author=author, author_role=role,
                            body=f"[{duplicate.number}] {body}", created_at=at))
    old_status, closed = duplicate.status, _closed_status(workflow)
    duplicate.status, duplicate.merged_into, duplicate.updated_at = closed, survivor.number, now
    duplicate.closed_at, duplicate.resolved_at = now, duplicate.resolved_at or now
    survivor.updated_at = now
    sync_clocks(session, duplicate, rules, now)
    _add_link(session, duplicate, survivor, "merged_into", viewer.actor, now)
    _add_link(session, survivor, duplicate, "merged_from", viewer.actor, now)
    _record(session, duplicate, viewer, "status", old_status, closed, now)
    _record(session, duplicate, viewer, "merged_into", None, survivor.number, now)
    _record(session, survivor, viewer, "merged_from", None, {"ticket": duplicate.number, "messages": len(words)}, now)
    session.flush()
    merged_view, survivor_view = ticket_view(duplicate, rules, now), ticket_view(survivor, rules, now)
    changes = [{"field": "status", "old": old_status, "new": closed},
               {"field": "merged_into", "old": None, "new": survivor.number}]
    _publish(session, "ticket_updated", {"ticket": merged_view, "changes": changes, "actor": viewer.actor}, viewer,
             duplicate.number)
    _publish(session, "status_changed", {"ticket": merged_view, "from_status": old_status, "to_status": closed},
             viewer, duplicate.number)
    _publish(session, "ticket_merged", {"merged": merged_view, "survivor": survivor_view, "copied_messages": len(words),
                                        "actor": viewer.actor}, viewer, duplicate.number)
    return survivor_view
