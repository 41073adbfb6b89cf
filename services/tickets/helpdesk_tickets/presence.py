"""Who has a ticket open and who is typing a reply, for collision warnings: plain functions with an
explicit ``now``. Each open ticket page says "here (typing or not)" every few seconds; whoever was seen
within ``WINDOW`` is present. Rows are overwritten in place (one per agent and ticket), and old ones are
dropped as the ticket's presence is written, so the table stays as small as the number of open pages.

An arrival, a departure (``here`` false: the page closed) and a change of ``typing`` are announced as
``ticket_presence_changed`` through the outbox, in the same transaction, so the workspace's live streams
push the warning at once; a mere "still here" announces nothing.
"""
from datetime import timedelta

from sqlalchemy import delete, select

from helpdesk_common.errors import Forbidden
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage

from .domain import STAFF, find_ticket, iso
from .models import Outbox, TicketPresence

WINDOW = timedelta(seconds=15)


def _staff_only(viewer):
    if viewer.role not in STAFF:
        raise Forbidden("Presence on tickets is for agents only.", code="agents_only")


def here(session, number, viewer, typing, name, now, present=True):
    """The viewer has ticket ``number`` open (``typing`` a reply, or not; None: as they said last), or closed
    it (``present`` false); answers the others present."""
    _staff_only(viewer)
    ticket = find_ticket(session, number, viewer)
    session.execute(delete(TicketPresence).where(TicketPresence.ticket_id == ticket.id,
                                                 TicketPresence.seen_at < now - WINDOW))
    row = session.get(TicketPresence, (ticket.id, viewer.actor))
    changed = False
    if not present:
        if row is not None:
            session.delete(row)
            changed = True
    elif row is None:
        row = TicketPresence(ticket_id=ticket.id, actor=viewer.actor, name=name, typing=bool(typing), seen_at=now)
        session.add(row)
        changed = True
    else:
        changed = typing is not None and row.typing != typing
        row.name, row.seen_at = name, now
        if typing is not None:
            row.typing = typing
    session.flush()
    if changed:
        stage(session, Outbox, new_event("ticket_presence_changed", {
            "ticket_number": ticket.number, "actor": viewer.actor, "name": name, "present": present,
            "typing": bool(present and row.typing)}, correlation_id=viewer.correlation_id, subject=ticket.number))
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
