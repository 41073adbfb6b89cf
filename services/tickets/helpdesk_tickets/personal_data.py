"""A contact's personal data: exported on request, and erased on request. Plain functions of a session.

The tickets service owns contacts, so it is where an erasure starts: :func:`erase` removes what this
service holds about the person and announces ``contact_erased`` (outbox, same transaction), on which every
other service erases its own part (intake's mail and chats, surveys' answers, analytics' comments, the
gateway's accounts).

What an erasure keeps is what reports count: the contact's id (a tombstone, ``erased_at`` set) and its
tickets' number, channel, priority, status, team, tier, assignee, category, language, tags and times. What
it removes: the contact's name, addresses, numbers and handles; the tickets' requester, subject,
description and custom fields; every message body on those tickets (agents' replies quote the customer
and greet them by name, so they go too) and the customer's name as author; history values other than the
counted fields; notification details; the events already relayed from the outbox (the ``contact_erased``
staged now goes out, and is deleted a relay retention after). Running it again finds the tombstone and
changes nothing.
"""
from sqlalchemy import and_, delete, or_, select, update

from helpdesk_common.errors import Forbidden
from helpdesk_common.events import new_event
from helpdesk_common.outbox import forget_published, stage

from .contacts import contact_view, get
from .domain import iso, message_view, ticket_view
from .models import (ContactIdentifier, HistoryRecord, IdempotencyKey, Message, MessageKey, Notification, Outbox,
                     Ticket)

ERASED = "(erased)"
# History fields whose values are counted by reports and say nothing about the person.
COUNTED_FIELDS = frozenset({"status", "priority", "severity", "team", "tier", "assignee", "tags", "category",
                            "language", "channel", "merged_into", "created"})


def check_admin(viewer):
    if viewer.role not in ("admin", "system"):
        raise Forbidden("Only admins may export or erase a person's data.", code="admins_only")


def identifiers(contact):
    """``(emails, phones, socials)`` of the contact, primary address first."""
    emails = list(dict.fromkeys([contact.email] if contact.email else [])
                  | dict.fromkeys(i.value for i in contact.identifiers if i.kind == "email"))
    return (emails, [i.value for i in contact.identifiers if i.kind == "phone"],
            [i.value for i in contact.identifiers if i.kind == "social"])


def _tickets(session, contact_id, emails):
    """The contact's tickets: linked to it, or sent from one of its addresses without a contact (ambiguous)."""
    owned = Ticket.requester_id == contact_id
    if emails:
        owned = or_(owned, and_(Ticket.requester_id.is_(None), Ticket.requester_email.in_(emails)))
    return list(session.scalars(select(Ticket).where(owned).order_by(Ticket.id)))


def _own(session, contact_id, kind, values):
    """``values`` that no other contact has too: a shared identifier (a family's phone, a team's mailbox) also
    names somebody else, whose data an erasure must not touch."""
    if not values:
        return []
    shared = set(session.scalars(select(ContactIdentifier.value).where(
        ContactIdentifier.kind == kind, ContactIdentifier.value.in_(values),
        ContactIdentifier.contact_id != contact_id)))
    return [value for value in values if value not in shared]


def export(session, contact_id, rules=None):
    """Everything this service holds about the contact: the contact, its tickets with their messages
    (internal notes included: they are held about the person too) and their history."""
    contact = get(session, contact_id)
    emails, phones, socials = identifiers(contact)
    tickets = _tickets(session, contact.id, emails)
    ids = [t.id for t in tickets]
    messages, history = {}, {}
    if ids:
        for message in session.scalars(select(Message).where(Message.ticket_id.in_(ids)).order_by(Message.id)):
            messages.setdefault(message.ticket_id, []).append(message)
        for record in session.scalars(select(HistoryRecord).where(HistoryRecord.ticket_id.in_(ids))
                                      .order_by(HistoryRecord.id)):
            history.setdefault(record.ticket_id, []).append(
                {"at": iso(record.at), "actor": record.actor, "field": record.field, "old": record.old,
                 "new": record.new})
    return {
        "contact": contact_view(contact), "erased_at": iso(contact.erased_at),
        "emails": emails, "phones": phones, "socials": socials,
        "tickets": [{**ticket_view(t, rules), "messages": [message_view(m, t.number) for m in messages.get(t.id, [])],
                     "history": history.get(t.id, [])} for t in tickets],
    }


def erase(session, contact_id, now, actor="system"):
    """Erase the contact's personal data (see the module's docstring) and stage ``contact_erased``.
    Answers the erasure's view; a contact erased before answers ``already_erased`` and nothing changes."""
    contact = get(session, contact_id, for_update=True)
    if contact.erased_at is not None:
        return {"contact_id": contact.id, "erased_at": iso(contact.erased_at), "already_erased": True,
                "ticket_numbers": [t.number for t in _tickets(session, contact.id, [])]}
    emails, phones, socials = (_own(session, contact.id, kind, values)
                               for kind, values in zip(("email", "phone", "social"), identifiers(contact)))
    tickets = _tickets(session, contact.id, emails)
    ids = [t.id for t in tickets]
    numbers = [t.number for t in tickets]
    if ids:
        session.execute(update(Ticket).where(Ticket.id.in_(ids))
                        .values(subject=ERASED, description="", requester_email=None, requester_name=None,
                                requester_id=contact.id, custom_fields={}, version=Ticket.version + 1)
                        .execution_options(synchronize_session=False))
        session.execute(update(Message).where(Message.ticket_id.in_(ids)).values(body="")
                        .execution_options(synchronize_session=False))
        session.execute(update(HistoryRecord).where(HistoryRecord.ticket_id.in_(ids),
                                                    HistoryRecord.field.not_in(COUNTED_FIELDS))
                        .values(old=None, new=None).execution_options(synchronize_session=False))
        session.execute(update(Notification).where(Notification.ticket_id.in_(ids)).values(detail=None)
                        .execution_options(synchronize_session=False))
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.ticket_id.in_(ids)))
    if emails:  # the person as author or actor, on these tickets and elsewhere
        session.execute(update(Message).where(Message.author.in_(emails)).values(author=ERASED)
                        .execution_options(synchronize_session=False))
        session.execute(update(HistoryRecord).where(HistoryRecord.actor.in_(emails)).values(actor=ERASED)
                        .execution_options(synchronize_session=False))
        session.execute(delete(MessageKey).where(MessageKey.client.in_(emails)))
    forget_published(session, Outbox)  # relayed events of these tickets carried their text
    session.execute(delete(ContactIdentifier).where(ContactIdentifier.contact_id == contact.id))
    session.expire(contact, ["identifiers"])
    contact.name, contact.email, contact.erased_at = None, None, now
    session.flush()
    stage(session, Outbox, new_event("contact_erased", {
        "contact_id": contact.id, "emails": emails, "phones": phones, "socials": socials,
        "ticket_numbers": numbers, "erased_at": iso(now)}, subject=str(contact.id)))
    return {"contact_id": contact.id, "erased_at": iso(now), "already_erased": False, "ticket_numbers": numbers}
