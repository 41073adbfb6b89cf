"""The rules of a ticket's life, as plain functions of a SQLAlchemy session. No nameko in here.

Every function that changes a ticket records history and stages its events in the caller's
transaction, so a ticket, its history and its events are committed together or not at all.
"""
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import false, func, insert, or_, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from helpdesk_common.consumer import first_delivery
from helpdesk_common.contracts.tickets import TicketChanges, Viewer
from helpdesk_common.database import utcnow
from helpdesk_common.errors import Forbidden, HelpdeskError, ValidationFailed
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage, stage_many

from . import custom_fields
from .exceptions import idempotency_key_reused, ticket_not_found
from .models import Contact, HistoryRecord, IdempotencyKey, Message, Outbox, ProcessedEvent, Ticket
from .workflow import Workflow

STAFF = ("admin", "agent", "system")
CHANGEABLE = ("status", "priority", "severity", "assignee", "team", "tier", "tags", "custom_fields")
NOT_NULL = ("status", "priority", "tier", "tags", "custom_fields")


@dataclass(frozen=True)
class Rules:
    """An organisation's settings that shape tickets: the workflow and how numbers look."""

    workflow: Workflow
    number_format: str = "HD-{seq:06d}"

    def __post_init__(self):
        now = utcnow()  # a malformed format fails at start-up, not on the first ticket
        # "{{seq}}" contains "{seq" yet renders the same text for every ticket: compare two numbers.
        if "{seq" not in self.number_format or self.number_for(1, now) == self.number_for(2, now):
            raise ValueError("the ticket number format must contain {seq} to stay unique")

    def number_for(self, seq, created_at):
        return self.number_format.format(seq=seq, year=created_at.year)


def iso(moment):
    return moment.isoformat() if moment is not None else None


def ticket_view(ticket):
    """The ticket as the API and the events show it."""
    return {
        "number": ticket.number, "subject": ticket.subject, "description": ticket.description,
        "requester": {"email": ticket.requester.email, "name": ticket.requester.name},
        "channel": ticket.channel, "priority": ticket.priority, "severity": ticket.severity,
        "status": ticket.status, "team": ticket.team, "tier": ticket.tier, "assignee": ticket.assignee,
        "language": ticket.language, "category": ticket.category, "tags": list(ticket.tags or []),
        "custom_fields": dict(ticket.custom_fields or {}), "version": ticket.version,
        "created_at": iso(ticket.created_at), "updated_at": iso(ticket.updated_at),
        "first_response_at": iso(ticket.first_response_at), "resolved_at": iso(ticket.resolved_at),
        "closed_at": iso(ticket.closed_at),
    }


def message_view(message, number):
    return {"id": message.id, "ticket_number": number, "visibility": message.visibility,
            "author": message.author, "author_role": message.author_role, "body": message.body,
            "created_at": iso(message.created_at)}


def _publish(session, event_type, data, viewer, number):
    stage(session, Outbox, new_event(event_type, data, correlation_id=viewer.correlation_id, subject=number))


def _record(session, ticket, viewer, field, old, new, at):
    session.add(HistoryRecord(ticket_id=ticket.id, at=at, actor=viewer.actor, field=field, old=old, new=new))


def _contacts(session, requesters):
    """The contacts of these requesters by email, creating the missing ones.

    INSERT ... ON CONFLICT DO NOTHING, in email order: replicas creating the same new contact at once
    neither fail on the unique email nor deadlock on each other's rows.
    """
    names = {}
    for requester in requesters:
        names.setdefault(requester.email.lower(), requester.name)
    found = {c.email: c for c in session.scalars(select(Contact).where(Contact.email.in_(names)))}
    missing = sorted(set(names) - set(found))
    if missing:
        insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        now = utcnow()
        session.execute(insert(Contact).values([{"email": email, "name": names[email], "created_at": now}
                                                for email in missing]).on_conflict_do_nothing(index_elements=["email"]))
        found.update((c.email, c) for c in session.scalars(select(Contact).where(Contact.email.in_(missing))))
    return found


def _request_hash(command):
    canonical = json.dumps(command.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _visible(query, viewer):
    """Limit a ticket query to what ``viewer`` may see (anyone unknown sees nothing)."""
    if viewer.role in ("admin", "system"):
        return query
    if viewer.role == "agent":
        if viewer.teams:
            return query.where(or_(Ticket.team.in_(viewer.teams), Ticket.team.is_(None)))
        return query
    if viewer.role == "customer":
        return query.join(Contact, Ticket.requester_id == Contact.id).where(
            Contact.email == (viewer.email or "").lower())
    return query.where(false())


def find_ticket(session: Session, number, viewer, for_update=False):
    """The ticket ``number`` if ``viewer`` may see it; otherwise the same error as a missing one.

    ``for_update`` locks the row (PostgreSQL) so that writers queue instead of failing each other's
    version check; SQLite transactions are serialised already.
    """
    query = _visible(select(Ticket).where(Ticket.number == str(number)), viewer)
    if for_update:
        query = query.with_for_update(of=Ticket)
    ticket = session.scalar(query)
    if ticket is None:
        raise ticket_not_found(number)
    return ticket


def open_ticket(session: Session, command, viewer, rules: Rules, idempotency_key=None):
    """Open a ticket. Returns ``(view, created)``; a repeated Idempotency-Key returns the first ticket."""
    (outcome,) = open_tickets(session, [(command, viewer, idempotency_key)], rules)
    if isinstance(outcome, HelpdeskError):
        raise outcome
    return outcome


def _allocate_ids(session, count):
    """Ids for ``count`` new tickets, taken from the database so that replicas never collide.

    Knowing the id before the INSERT lets the number be written with the row (one statement, not an
    INSERT and an UPDATE). Should two writers ever pick the same id, the primary key refuses the second
    transaction, which is then run again.
    """
    if not count:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(text("SELECT nextval(pg_get_serial_sequence('tickets', 'id')) "
                                         "FROM generate_series(1, :n)"), {"n": count}))
    # SQLite: the transaction began IMMEDIATE, so this process alone writes until it commits.
    start = session.scalar(select(func.coalesce(func.max(Ticket.id), 0))) + 1
    return list(range(start, start + count))


def _check_request(command, viewer, definitions):
    if viewer.role == "customer" and command.requester.email.lower() != (viewer.email or "").lower():
        raise Forbidden("Customers can only open tickets for themselves.", code="requester_mismatch")
    return custom_fields.check_values(None, command.custom_fields, definitions=definitions)


def open_tickets(session: Session, requests, rules: Rules):
    """Open several tickets in one transaction, with one statement per table for the whole batch.

    ``requests`` holds ``(command, viewer, idempotency_key)``; the answer holds, in the same order,
    ``(view, created)`` or the HelpdeskError that refused that request: one refusal spoils no other.
    A repeated Idempotency-Key (earlier, or twice in this batch) answers with the first ticket.
    """
    outcomes = [None] * len(requests)
    with session.no_autoflush:
        definitions = custom_fields.load_definitions(session)
        contacts = _contacts(session, [command.requester for command, _, _ in requests])
        keys = {key for _, _, key in requests if key}
        earlier = {(k.client, k.key): k for k in session.scalars(
            select(IdempotencyKey).where(IdempotencyKey.key.in_(keys)))} if keys else {}
        fresh, repeats, claimed = [], [], {}
        for index, (command, viewer, key) in enumerate(requests):
            try:
                values = _check_request(command, viewer, definitions)
                digest = _request_hash(command) if key else None
                first = earlier.get((viewer.actor, key)) if key else None
                if first is not None:
                    if first.request_hash != digest:
                        raise idempotency_key_reused(key)
                    outcomes[index] = (ticket_view(session.get(Ticket, first.ticket_id)), False)
                elif key and (viewer.actor, key) in claimed:
                    repeats.append((index, claimed[(viewer.actor, key)], digest, key))
                else:
                    if key:
                        claimed[(viewer.actor, key)] = (index, digest)
                    fresh.append((index, command, viewer, key, digest, values))
            except HelpdeskError as error:
                outcomes[index] = error
        now = utcnow()
        tickets = []
        for (index, command, viewer, key, digest, values), ticket_id in zip(fresh, _allocate_ids(session, len(fresh))):
            contact = contacts[command.requester.email.lower()]
            if command.requester.name and not contact.name:
                contact.name = command.requester.name
            ticket = Ticket(
                id=ticket_id, number=rules.number_for(ticket_id, now), subject=command.subject,
                description=command.description, requester=contact, channel=command.channel,
                priority=command.priority, severity=command.severity, status=rules.workflow.initial,
                team=command.team, tier=1, language=command.language, category=command.category,
                tags=list(dict.fromkeys(command.tags)), custom_fields=values, reopen_count=0,
                created_at=now, updated_at=now,
            )
            session.add(ticket)
            tickets.append((index, ticket, viewer, key, digest))
        session.flush()  # the tickets: one INSERT for the whole batch
        keys, history, events = [], [], []
        for index, ticket, viewer, key, digest in tickets:
            if key:
                keys.append({"client": viewer.actor, "key": key, "request_hash": digest, "ticket_id": ticket.id,
                             "created_at": now})
            history.append({"ticket_id": ticket.id, "at": now, "actor": viewer.actor, "field": "created",
                            "old": None, "new": {"channel": ticket.channel, "status": ticket.status}})
            view = ticket_view(ticket)
            events.append(new_event("ticket_created", {"ticket": view}, correlation_id=viewer.correlation_id,
                                    subject=ticket.number))
            outcomes[index] = (view, True)
        # Rows nobody reads back in this transaction go in as plain executemany statements.
        if keys:
            session.execute(insert(IdempotencyKey), keys)
        if history:
            session.execute(insert(HistoryRecord), history)
        stage_many(session, Outbox, events)
        for index, (first_index, first_digest), digest, key in repeats:
            first = outcomes[first_index]
            outcomes[index] = (idempotency_key_reused(key) if digest != first_digest
                               else (first[0], False))
    return outcomes


def _apply_status(ticket, target, rules, now):
    workflow = rules.workflow
    workflow.check(ticket.status, target)
    if workflow.is_reopening(ticket.status, target):
        ticket.reopen_count += 1
        ticket.resolved_at = None
        ticket.closed_at = None
    category = workflow.category(target)
    if category == "resolved":
        ticket.resolved_at = now
    if category == "closed":
        ticket.closed_at = now
        ticket.resolved_at = ticket.resolved_at or now


def change_ticket(session: Session, number, changes, viewer, rules: Rules):
    """Apply a partial update; every field that really changed is recorded and announced."""
    if viewer.role not in STAFF:
        raise Forbidden("Only agents can change a ticket.", code="agents_only")
    ticket = find_ticket(session, number, viewer, for_update=True)
    given = [field for field in CHANGEABLE if field in changes.model_fields_set]
    nulls = [field for field in given if field in NOT_NULL and getattr(changes, field) is None]
    if nulls:
        raise ValidationFailed(f"{', '.join(nulls)} cannot be null.",
                               details=[{"field": f, "code": "null_not_allowed", "message": "give a value"}
                                        for f in nulls])
    now = utcnow()
    diff = []
    old_status = ticket.status
    for field in given:
        new = getattr(changes, field)
        if field == "tags":
            new = list(dict.fromkeys(new))
        elif field == "custom_fields":
            new = custom_fields.check_values(session, new, current=ticket.custom_fields)
        old = getattr(ticket, field)
        if old == new:
            continue
        if field == "status":
            _apply_status(ticket, new, rules, now)
        setattr(ticket, field, new)
        diff.append({"field": field, "old": old, "new": new})
    if not diff:
        return ticket_view(ticket)
    ticket.updated_at = now
    for change in diff:
        _record(session, ticket, viewer, change["field"], change["old"], change["new"], now)
    session.flush()
    view = ticket_view(ticket)
    _publish(session, "ticket_updated", {"ticket": view, "changes": diff}, viewer, ticket.number)
    if ticket.status != old_status:
        _publish(session, "status_changed", {"ticket": view, "from_status": old_status,
                                             "to_status": ticket.status}, viewer, ticket.number)
    return view


def add_message(session: Session, number, command, viewer, rules: Rules):
    """Add a public reply or an internal note. A customer's reply takes a pending ticket back to open."""
    if command.visibility == "internal" and viewer.role not in STAFF:
        raise Forbidden("Internal notes are for agents only.", code="agents_only")
    ticket = find_ticket(session, number, viewer, for_update=True)
    now = utcnow()
    message = Message(ticket_id=ticket.id, visibility=command.visibility, author=viewer.actor,
                      author_role=viewer.role, body=command.body, created_at=now)
    session.add(message)
    ticket.updated_at = now
    if command.visibility == "public" and viewer.role in ("admin", "agent") and ticket.first_response_at is None:
        ticket.first_response_at = now
        _record(session, ticket, viewer, "first_response_at", None, iso(now), now)
    old_status = ticket.status
    if viewer.role == "customer" and rules.workflow.category(ticket.status) == "pending":
        target = next((s for s in rules.workflow.transitions[ticket.status]
                       if rules.workflow.category(s) == "open"), None)
        if target:
            _apply_status(ticket, target, rules, now)
            ticket.status = target
            _record(session, ticket, viewer, "status", old_status, target, now)
    session.flush()
    _record(session, ticket, viewer, f"message.{command.visibility}", None, message.id, now)
    view = ticket_view(ticket)
    result = message_view(message, ticket.number)
    _publish(session, "message_added", {"ticket": view, "message": result}, viewer, ticket.number)
    if ticket.status != old_status:
        _publish(session, "status_changed", {"ticket": view, "from_status": old_status,
                                             "to_status": ticket.status}, viewer, ticket.number)
    return result


def list_messages(session: Session, number, viewer):
    """The ticket's conversation, oldest first; customers never see internal notes."""
    ticket = find_ticket(session, number, viewer)
    query = select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
    if viewer.role not in STAFF:
        query = query.where(Message.visibility == "public")
    return [message_view(m, ticket.number) for m in session.scalars(query)]


def history(session: Session, number, viewer):
    """Every recorded change of the ticket, oldest first (agents only)."""
    if viewer.role not in STAFF:
        raise Forbidden("The change history is for agents only.", code="agents_only")
    ticket = find_ticket(session, number, viewer)
    records = session.scalars(select(HistoryRecord).where(HistoryRecord.ticket_id == ticket.id)
                              .order_by(HistoryRecord.id))
    return [{"at": iso(r.at), "actor": r.actor, "field": r.field, "old": r.old, "new": r.new} for r in records]


def find_tickets(session: Session, query, viewer):
    """Tickets matching the filters, newest first, a page at a time (``next_cursor`` for the next)."""
    statement = _visible(select(Ticket), viewer)
    if query.status:
        statement = statement.where(Ticket.status == query.status)
    if query.priority:
        statement = statement.where(Ticket.priority == query.priority)
    if query.assignee:
        statement = statement.where(Ticket.assignee == query.assignee)
    if query.team:
        statement = statement.where(Ticket.team == query.team)
    if query.requester:
        if viewer.role != "customer":
            statement = statement.join(Contact, Ticket.requester_id == Contact.id)
        statement = statement.where(Contact.email == query.requester.lower())
    if query.text:
        pattern = "%" + query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(or_(Ticket.subject.ilike(pattern, escape="\\"),
                                        Ticket.description.ilike(pattern, escape="\\")))
    if query.cursor:
        # ASCII digits only ("²".isdigit() is true but int() fails) and within a 64-bit id.
        if not (query.cursor.isascii() and query.cursor.isdigit() and len(query.cursor) <= 18):
            raise ValidationFailed("The cursor is not one this API gave out; start again without it.",
                                   details=[{"field": "cursor", "code": "invalid_format",
                                             "message": "use next_cursor from the previous page"}])
        statement = statement.where(Ticket.id < int(query.cursor))
    rows = list(session.scalars(statement.order_by(Ticket.id.desc()).limit(query.limit + 1)))
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return {"items": [ticket_view(t) for t in rows],
            "next_cursor": str(rows[-1].id) if more and rows else None}


ROUTING_HANDLER = "tickets.apply_routing"


def apply_routing(session: Session, envelope, rules: Rules):
    """Take over what routing decided (an assignment, a queue, an escalation), once per event.

    Only fields that really change are written and announced, so routing's own ``ticket_updated`` echo
    stays quiet; the decision's reason is kept in the history beside the changes it made.
    """
    if not first_delivery(session, ProcessedEvent, envelope["id"], ROUTING_HANDLER):
        return None
    data, kind = envelope["data"], envelope["type"]
    if kind == "ticket_assigned":
        changes = {"assignee": data["assignee"], "tier": data.get("tier", 1)}
    elif kind == "ticket_queued":
        changes = {"assignee": None, "tier": data.get("tier", 1)}
    elif kind == "ticket_escalated":
        changes = {"tier": data["to_tier"], **({"team": data["to_team"]} if data.get("to_team") else {})}
    else:
        raise ValueError(f"not a routing decision: {kind}")
    if kind != "ticket_escalated" and data.get("team"):
        changes["team"] = data["team"]  # no team chosen: the ticket keeps the one it has
    if data.get("priority"):
        changes["priority"] = data["priority"]
    viewer = Viewer(actor="routing", role="system", correlation_id=envelope.get("correlation_id"))
    view = change_ticket(session, data["ticket_number"], TicketChanges.model_validate(changes, strict=False),
                         viewer, rules)
    ticket = find_ticket(session, data["ticket_number"], viewer)
    _record(session, ticket, viewer, kind, None, {"reason": data.get("reason"), "rule": data.get("rule"),
                                                  "trigger": data.get("trigger")}, utcnow())
    return view

