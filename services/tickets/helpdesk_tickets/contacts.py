"""Contacts and their identifiers, as plain functions of a SQLAlchemy session. No nameko in here.

A contact is one person known by several identifiers: email addresses, phone numbers, social handles.
Every identifier is normalised before it is stored or looked up, so ``Eva@Example.SE`` and
``eva@example.se`` are one address, and ``06 1234 5678`` (region NL) and ``+31612345678`` one number.

Resolving a sender never guesses: when an identifier belongs to several contacts, or the sender's
identifiers point at different contacts, the answer is "ambiguous" and the caller opens the ticket
without a contact, flagged for an agent to link.

Every change is announced in the same transaction through the outbox: ``contact_created``,
``contact_updated`` and ``contact_merged``.

Who sees a contact (``visible``): admins and agents whose token names no team, every contact; an agent
limited to teams, the contacts with at least one ticket they may see (of their teams, or of no team),
and contacts with no ticket at all (just created by a colleague, or not yet written to: like a ticket of
no team, nobody's yet). A contact known only through another team's tickets is that team's business:
its identifiers (addresses, phone numbers) are personal data the agent has no ticket to justify. Hidden
contacts answer the same 404 as missing ones. Customers and visitors see no contacts.
"""
from dataclasses import dataclass, field

import phonenumbers
from sqlalchemy import exists, false, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import selectinload

from helpdesk_common.database import utcnow
from helpdesk_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage, stage_many

from . import organisations
from .models import Contact, ContactIdentifier, HistoryRecord, Outbox, Ticket


def _invalid(field_name, message):
    return ValidationFailed(f"The identifier is not valid: {message}",
                            details=[{"field": field_name, "code": "invalid_value", "message": message}])


def normalise(kind, value, platform=None, region=None, field_name="value"):
    """``(kind, normalised value)`` of an identifier, or ValidationFailed saying what is wrong.

    Phone numbers become E.164; a number without ``+`` needs ``region`` (ISO 3166 code such as ``NL``).
    Social handles become ``platform:handle`` in lower case, without a leading ``@``.
    """
    value = (value or "").strip()
    if kind == "email":
        if value.count("@") != 1 or not all(value.split("@")) or any(c.isspace() for c in value):
            raise _invalid(field_name, f"{value!r} is not an email address")
        return "email", value.lower()
    if kind == "phone":
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            raise _invalid(field_name, f"{value!r} is not a phone number; give it as +<country code><number>") from None
        if not phonenumbers.is_valid_number(number):
            raise _invalid(field_name, f"{value!r} is not a valid phone number")
        return "phone", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if kind == "social":
        handle = value.lstrip("@").lower()
        if not platform or not handle:
            raise _invalid(field_name, "a social identifier needs a platform and a handle")
        return "social", f"{platform.strip().lower()}:{handle}"
    raise _invalid(field_name, f"unknown kind {kind!r}; use email, phone or social")


def requester_identifiers(requester, region=None):
    """The normalised identifiers a ticket's requester gives, email first."""
    found = [normalise("email", requester.email, field_name="requester.email")]
    if requester.phone:
        found.append(normalise("phone", requester.phone, region=region, field_name="requester.phone"))
    if requester.social:
        found.append(normalise("social", requester.social.handle, requester.social.platform,
                               field_name="requester.social"))
    return list(dict.fromkeys(found))


@dataclass
class Resolution:
    """What a sender's identifiers resolve to: one contact, nobody yet, or several (``ambiguous``)."""

    identifiers: list
    owners: dict = field(default_factory=dict)  # {(kind, value): {contact ids}} of the known ones
    contact_ids: set = field(default_factory=set)
    ambiguous: list = field(default_factory=list)  # [(kind, value, [contact ids])]

    @property
    def contact_id(self):
        return next(iter(self.contact_ids)) if len(self.contact_ids) == 1 and not self.ambiguous else None

    @property
    def is_ambiguous(self):
        return bool(self.ambiguous) or len(self.contact_ids) > 1


def owners(session, identifiers):
    """``{(kind, value): {contact ids}}`` for the identifiers that are known."""
    found = {}
    if identifiers:
        rows = session.execute(select(ContactIdentifier.kind, ContactIdentifier.value, ContactIdentifier.contact_id)
                               .where(tuple_(ContactIdentifier.kind, ContactIdentifier.value).in_(identifiers)))
        for kind, value, contact_id in rows:
            found.setdefault((kind, value), set()).add(contact_id)
    return found


def resolve(identifiers, known):
    """Resolve one sender from ``known`` (``owners``'s answer). Unknown identifiers do not count:
    a call from a known number lands on its contact whatever placeholder address came with it."""
    resolution = Resolution(identifiers=identifiers, owners={i: known[i] for i in identifiers if i in known})
    for identifier in identifiers:
        ids = known.get(identifier, set())
        if len(ids) > 1:
            resolution.ambiguous.append((*identifier, sorted(ids)))
        resolution.contact_ids |= ids
    if len(resolution.contact_ids) > 1 and not resolution.ambiguous:
        resolution.ambiguous.append(("mixed", ", ".join(f"{k}:{v}" for k, v in identifiers),
                                     sorted(resolution.contact_ids)))
    return resolution


def _insert(session):
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def create_for_senders(session, senders, now=None):
    """Create a contact for each new sender (``[(email, name, identifiers)]``, unknown by all identifiers)
    and return ``{email: contact id}``.

    INSERT ... ON CONFLICT DO NOTHING on the unique primary email, in email order: replicas creating the
    same new contact at once end up with one contact, neither failing nor deadlocking.
    """
    if not senders:
        return {}
    now = now or utcnow()
    insert = _insert(session)
    by_email = {}
    for email, name, identifiers in sorted(senders, key=lambda s: s[0]):
        entry = by_email.setdefault(email, [name, []])
        entry[1].extend(identifiers)
    # RETURNING answers only the rows this transaction inserted: those contacts are announced here,
    # a contact another replica created first is announced by that replica.
    inserted = set(session.scalars(insert(Contact).values([{"email": email, "name": name, "created_at": now}
                                                            for email, (name, _) in by_email.items()])
                                   .on_conflict_do_nothing(index_elements=["email"]).returning(Contact.id)))
    ids = dict(session.execute(select(Contact.email, Contact.id).where(Contact.email.in_(by_email))).all())
    rows = [{"contact_id": ids[email], "kind": kind, "value": value, "created_at": now}
            for email, (_, identifiers) in by_email.items() for kind, value in dict.fromkeys(identifiers)]
    session.execute(insert(ContactIdentifier).values(rows)
                    .on_conflict_do_nothing(index_elements=["contact_id", "kind", "value"]))
    if inserted:
        created = [contact_id for contact_id in ids.values() if contact_id in inserted]
        organisations.join_new_contacts(session, created)
        stage_many(session, Outbox, [new_event("contact_created", {"contact": contact_view(contact)})
                                     for contact in session.scalars(select(Contact).where(Contact.id.in_(created))
                                                                    .options(selectinload(Contact.identifiers))
                                                                    .order_by(Contact.id))])
    return ids


# --- the contacts API -------------------------------------------------------------------------------

def contact_view(contact):
    return {"id": contact.id, "name": contact.name, "email": contact.email,
            "identifiers": [identifier_view(i) for i in contact.identifiers],
            "organisation_id": contact.organisation_id, "created_at": contact.created_at.isoformat(),
            "erased_at": contact.erased_at.isoformat() if contact.erased_at else None}


def identifier_view(identifier):
    platform, value = None, identifier.value
    if identifier.kind == "social":
        platform, value = identifier.value.split(":", 1)
    return {"id": identifier.id, "kind": identifier.kind, "value": value, "platform": platform}


def check_staff(viewer):
    if viewer is not None and viewer.role not in ("admin", "agent", "system"):
        raise Forbidden("Contacts are for agents only.", code="agents_only")


def check_admin(viewer):
    """Organisations and who belongs to them are an admin's to change (the gateway checks the role too)."""
    check_staff(viewer)
    if viewer is not None and viewer.role not in ("admin", "system"):
        raise Forbidden("Only admins change organisations and their members.", code="role_not_allowed")


def visible(statement, viewer):
    """Limit a query of contacts to those ``viewer`` may see (see the module's docstring). ``None``: the
    service itself (sees all)."""
    if viewer is None or viewer.role in ("admin", "system") or (viewer.role == "agent" and not viewer.teams):
        return statement
    if viewer.role != "agent":
        return statement.where(false())
    tickets = select(Ticket.id).where(Ticket.requester_id == Contact.id)
    seen = tickets.where(or_(Ticket.team.in_(list(viewer.teams)), Ticket.team.is_(None)))
    return statement.where(or_(exists(seen), ~exists(tickets)))


def get(session, contact_id, for_update=False, viewer=None):
    """The contact, if ``viewer`` may see it; otherwise the same 404 as a missing one."""
    query = visible(select(Contact).where(Contact.id == contact_id), viewer)
    if for_update:
        query = query.with_for_update(of=Contact)
    contact = session.scalar(query)
    if contact is None:
        raise NotFound(f"There is no contact {contact_id}.", code="contact_not_found")
    return contact


def _normalised(identifiers, region, prefix="identifiers"):
    return [normalise(i.kind, i.value, i.platform, region, f"{prefix}.{n}.value") for n, i in enumerate(identifiers)]


def create(session, command, region=None):
    """A new contact with these identifiers. An identifier another contact has already is allowed (a
    shared mailbox, a family phone): mail from it is then ambiguous, never silently given to one."""
    identifiers = list(dict.fromkeys(_normalised(command.identifiers, region)))
    emails = [value for kind, value in identifiers if kind == "email"]
    primary = next((e for e in emails if session.scalar(select(Contact.id).where(Contact.email == e)) is None), None)
    contact = Contact(name=command.name, email=primary, created_at=utcnow())
    contact.identifiers = [ContactIdentifier(kind=k, value=v, created_at=contact.created_at) for k, v in identifiers]
    session.add(contact)
    session.flush()
    organisations.join_new_contacts(session, [contact.id])
    view = contact_view(contact)
    stage(session, Outbox, new_event("contact_created", {"contact": view}))
    return view


def find(session, query, region=None, viewer=None):
    """Contacts ``viewer`` may see, newest first; with ``kind`` and ``value``, only those known by that
    identifier."""
    statement = visible(select(Contact).order_by(Contact.id.desc()).limit(query.limit + 1), viewer)
    if query.kind or query.value:
        if not (query.kind and query.value):
            raise ValidationFailed("Give both kind and value to find a contact by an identifier.",
                                   details=[{"field": "kind" if not query.kind else "value", "code": "missing",
                                             "message": "needed with the other"}])
        kind, value = normalise(query.kind, query.value, query.platform, region)
        statement = statement.where(Contact.id.in_(select(ContactIdentifier.contact_id).where(
            ContactIdentifier.kind == kind, ContactIdentifier.value == value)))
    if query.cursor:
        if not (query.cursor.isascii() and query.cursor.isdigit()):
            raise ValidationFailed("The cursor is not one this API gave out; start again without it.",
                                   details=[{"field": "cursor", "code": "invalid_format",
                                             "message": "use next_cursor from the previous page"}])
        statement = statement.where(Contact.id < int(query.cursor))
    found = list(session.scalars(statement))
    page = found[:query.limit]
    return {"items": [contact_view(c) for c in page],
            "next_cursor": str(page[-1].id) if len(found) > query.limit else None}


def add_identifier(session, contact_id, identifier, region=None, viewer=None):
    contact = get(session, contact_id, for_update=True, viewer=viewer)
    kind, value = normalise(identifier.kind, identifier.value, identifier.platform, region)
    if any((i.kind, i.value) == (kind, value) for i in contact.identifiers):
        raise Conflict(f"Contact {contact_id} already has {kind} {value}.", code="identifier_exists")
    before = contact_view(contact)
    contact.identifiers.append(ContactIdentifier(kind=kind, value=value, created_at=utcnow()))
    if kind == "email" and contact.email is None and session.scalar(select(Contact.id).where(Contact.email == value)) is None:
        contact.email = value
    session.flush()
    return _announce_update(session, before, contact)


def remove_identifier(session, contact_id, identifier_id, viewer=None):
    """Remove one identifier; the last one stays (a contact nobody can be recognised by is useless).
    Removing the primary email makes another email identifier primary."""
    contact = get(session, contact_id, for_update=True, viewer=viewer)
    target = next((i for i in contact.identifiers if i.id == identifier_id), None)
    if target is None:
        raise NotFound(f"Contact {contact_id} has no identifier {identifier_id}.", code="identifier_not_found")
    if len(contact.identifiers) == 1:
        raise Conflict("This is the contact's last identifier; add another first, or merge the contact.",
                       code="last_identifier")
    before = contact_view(contact)
    contact.identifiers.remove(target)
    if target.kind == "email" and contact.email == target.value:
        contact.email = None
        session.flush()
        for other in contact.identifiers:
            if other.kind == "email" and session.scalar(select(Contact.id).where(Contact.email == other.value)) is None:
                contact.email = other.value
                break
    session.flush()
    return _announce_update(session, before, contact)


def set_organisation(session, contact_id, organisation_id, viewer=None):
    """An admin's choice: the contact belongs to ``organisation_id`` (or to none), whatever its domain."""
    contact = get(session, contact_id, for_update=True, viewer=viewer)
    if organisation_id is not None:
        organisations.get(session, organisation_id)
    before = contact_view(contact)
    contact.organisation_id, contact.organisation_set_by = organisation_id, organisations.BY_ADMIN
    session.flush()
    return _announce_update(session, before, contact)


def _announce_update(session, before, contact):
    """Stage ``contact_updated`` with the fields that differ from ``before``; answer the contact's view."""
    after = contact_view(contact)
    changes = [{"field": name, "old": before[name], "new": after[name]}
               for name in ("name", "email", "identifiers", "organisation_id") if before[name] != after[name]]
    stage(session, Outbox, new_event("contact_updated", {"contact": after, "changes": changes}))
    return after


def merge(session, contact_id, other_id, actor="system", viewer=None):
    """Move ``other``'s identifiers and tickets to ``contact_id`` and remove ``other``. Answers the
    merged contact and the numbers of the tickets that moved (each records the change in its history).
    ``viewer`` must see both contacts."""
    if contact_id == other_id:
        raise ValidationFailed("A contact cannot be merged with itself.",
                               details=[{"field": "other", "code": "invalid_value", "message": "same contact"}])
    keep, gone = (get(session, min(contact_id, other_id), True, viewer),
                  get(session, max(contact_id, other_id), True, viewer))
    if keep.id != contact_id:
        keep, gone = gone, keep
    have = {(i.kind, i.value) for i in keep.identifiers}
    moved = [(i.kind, i.value) for i in gone.identifiers if (i.kind, i.value) not in have]
    gone_id, gone_email, gone_name = gone.id, gone.email, gone.name
    moved_tickets = session.execute(select(Ticket.id, Ticket.number).where(Ticket.requester_id == gone.id)).all()
    numbers = [number for _, number in moved_tickets]
    session.execute(update(Ticket).where(Ticket.requester_id == gone.id)
                    .values(requester_id=keep.id, version=Ticket.version + 1)
                    .execution_options(synchronize_session=False))
    now = utcnow()
    session.add_all([HistoryRecord(ticket_id=ticket_id, at=now, actor=actor, field="requester",
                                   old={"contact_id": gone.id}, new={"contact_id": keep.id})
                     for ticket_id, _ in moved_tickets])
    session.delete(gone)  # its identifiers go with it (the relationship cascades)
    session.flush()
    for kind, value in moved:
        keep.identifiers.append(ContactIdentifier(kind=kind, value=value, created_at=utcnow()))
    if keep.email is None and gone_email:
        keep.email = gone_email
    if not keep.name:
        keep.name = gone_name
    session.flush()
    view = contact_view(keep)
    stage(session, Outbox, new_event("contact_merged", {"contact": view, "merged_contact_id": gone_id,
                                                        "ticket_numbers": numbers}))
    return view, numbers
