"""Agents following tickets, and the notifications they get, as plain functions of a session.

The tickets service writes them in the transaction of the change itself (a mention with its note, a
followed ticket's notice with its change), so a notification exists exactly when what it tells of does:
no consumer to lose or repeat one. Recipients are actor names (``agent-7``, as in ``assignee``); the
gateway shows each person theirs. Each batch is announced as ``agents_notified`` (recipients only, through
the outbox in the same transaction), so the workspace pushes the new count instead of polling for it.
"""
from sqlalchemy import func, select, update

from helpdesk_common.errors import Forbidden, ValidationFailed
from helpdesk_common.database import utcnow
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage

from .domain import STAFF, find_ticket, iso
from .models import Notification, Outbox, Ticket, TicketFollower

EXCERPT = 200
PAGE = 50


def _staff_only(viewer):
    if viewer.role not in STAFF:
        raise Forbidden("Following tickets and notifications are for agents only.", code="agents_only")


def _followers(session, ticket_id):
    return list(session.scalars(select(TicketFollower.actor).where(TicketFollower.ticket_id == ticket_id)
                                .order_by(TicketFollower.actor)))


def follow(session, number, viewer, following=True, now=None):
    """Follow (or stop following) ticket ``number`` as the viewer; answers who follows it."""
    _staff_only(viewer)
    ticket = find_ticket(session, number, viewer)
    present = session.get(TicketFollower, (ticket.id, viewer.actor))
    if following and present is None:
        session.add(TicketFollower(ticket_id=ticket.id, actor=viewer.actor, created_at=now or utcnow()))
    elif not following and present is not None:
        session.delete(present)
    session.flush()
    return follow_state(session, ticket, viewer)


def follow_state(session, ticket, viewer):
    followers = _followers(session, ticket.id)
    return {"ticket_number": ticket.number, "following": viewer.actor in followers, "followers": followers}


def following(session, number, viewer):
    _staff_only(viewer)
    return follow_state(session, find_ticket(session, number, viewer), viewer)


def _announce(session, ticket, kind, recipients, viewer):
    if recipients:
        stage(session, Outbox, new_event("agents_notified", {
            "ticket_number": ticket.number, "kind": kind, "recipients": list(recipients)},
            correlation_id=viewer.correlation_id, subject=ticket.number))


def on_message(session, ticket, message, viewer, mentions, now):
    """A message was added: each agent mentioned in an internal note is notified, and each follower
    (but the author, and those notified of the mention already) is told of the message."""
    mentioned = []
    if mentions:
        if message.visibility != "internal":
            raise ValidationFailed("Mentions notify agents, so they belong in internal notes, not in a reply to "
                                   "the customer.", code="mentions_in_notes_only")
        mentioned = [actor for actor in dict.fromkeys(mentions) if actor != viewer.actor]
        for actor in mentioned:
            session.add(Notification(recipient=actor, ticket_id=ticket.id, kind="mention", actor=viewer.actor,
                                     detail={"excerpt": message.body[:EXCERPT]}, created_at=now))
    _announce(session, ticket, "mention", mentioned, viewer)
    told = [actor for actor in _followers(session, ticket.id) if actor != viewer.actor and actor not in mentioned]
    for actor in told:
        session.add(Notification(recipient=actor, ticket_id=ticket.id, kind="message", actor=viewer.actor,
                                 detail={"visibility": message.visibility}, created_at=now))
    _announce(session, ticket, "message", told, viewer)


def on_change(session, ticket, diff, viewer, now):
    """Fields of a followed ticket changed: each follower but the one who changed it is told which."""
    fields = [change["field"] for change in diff]
    told = [actor for actor in _followers(session, ticket.id) if actor != viewer.actor]
    for actor in told:
        session.add(Notification(recipient=actor, ticket_id=ticket.id, kind="change", actor=viewer.actor,
                                 detail={"fields": fields}, created_at=now))
    _announce(session, ticket, "change", told, viewer)


def notifications(session, viewer, limit=PAGE):
    """The viewer's latest notifications (newest first) and how many are unread."""
    _staff_only(viewer)
    rows = session.execute(select(Notification, Ticket.number).join(Ticket, Ticket.id == Notification.ticket_id)
                           .where(Notification.recipient == viewer.actor)
                           .order_by(Notification.id.desc()).limit(limit))
    unread = session.scalar(select(func.count()).select_from(Notification).where(
        Notification.recipient == viewer.actor, Notification.read_at.is_(None)))
    return {"items": [{"id": n.id, "ticket_number": number, "kind": n.kind, "actor": n.actor, "detail": n.detail,
                       "created_at": iso(n.created_at), "read": n.read_at is not None} for n, number in rows],
            "unread": unread}


def mark_read(session, command, viewer, now=None):
    """Mark the viewer's notifications ``ids`` (or all of them) read; others' ids change nothing."""
    _staff_only(viewer)
    if not command.all and not command.ids:
        raise ValidationFailed("Give the ids to mark read, or all: true.", code="nothing_to_mark")
    statement = update(Notification).where(Notification.recipient == viewer.actor, Notification.read_at.is_(None))
    if not command.all:
        statement = statement.where(Notification.id.in_(command.ids))
    session.execute(statement.values(read_at=now or utcnow()).execution_options(synchronize_session=False))
    return notifications(session, viewer)
