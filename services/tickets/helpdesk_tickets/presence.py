"""Who has a ticket open and who is typing a reply, for collision warnings: plain functions with an
explicit ``now``. Each open ticket page says "here (typing or not)" every few seconds; whoever was seen
within ``WINDOW`` is present. Rows are overwritten in place (one per agent and ticket), and old ones are
dropped as the ticket's presence is written, so the table stays as small as the number of open pages.
"""
from datetime import timedelta

from sqlalchemy import delete, select

from helpdesk_common.errors import Forbidden

from .domain import STAFF, find_ticket, iso
from .models import TicketPresence

WINDOW = timedelta(seconds=15)


def _staff_only(viewer):
    if viewer.role not in STAFF:
        raise Forbidden("Presence on tickets is for agents only.", code="agents_only")


def here(session, number, viewer, typing, name, now):
    """The viewer has ticket ``number`` open (``typing`` a reply or not); answers the others present."""
    _staff_only(viewer)
    ticket = find_ticket(session, number, viewer)
    session.execute(delete(TicketPresence).where(TicketPresence.ticket_id == ticket.id,
                                                 TicketPresence.seen_at < now - WINDOW))
    row = session.get(TicketPresence, (ticket.id, viewer.actor))
    if row is None:
        session.add(TicketPresence(ticket_id=ticket.id, actor=viewer.actor, name=name, typing=typing, seen_at=now))
    else:
        row.name, row.typing, row.seen_at = name, typing, now
    session.flush()
    return _others(session, ticket, viewer, now)


def present(session, number, viewer, now):
    _staff_only(viewer)
    return _others(session, find_ticket(session, number, viewer), viewer, now)


def _others(session, ticket, viewer, now):
    rows = session.scalars(select(TicketPresence).where(
        TicketPresence.ticket_id == ticket.id, TicketPresence.actor != viewer.actor,
        TicketPresence.seen_at >= now - WINDOW).order_by(TicketPresence.seen_at.desc()))
    return {"ticket_number": ticket.number,
            "others": [{"actor": r.actor, "name": r.name, "typing": r.typing, "seen_at": iso(r.seen_at)} for r in rows]}
