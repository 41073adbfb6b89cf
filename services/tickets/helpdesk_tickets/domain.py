"""The rules of a ticket's life, as plain functions of a SQLAlchemy session. No nameko in here.

Every function that changes a ticket records history and stages its events in the caller's
transaction, so a ticket, its history and its events are committed together or not at all.
"""
import hashlib
import json
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import and_, bindparam, false, func, insert, or_, select, update
from sqlalchemy.orm import Session, selectinload

from helpdesk_common import authz
from helpdesk_common.bulk import allocate_ids, insert_rows
from helpdesk_common.inbox import first_deliveries
from helpdesk_common.contracts import given_fields
from helpdesk_common.contracts.tickets import TicketChanges, Viewer
from helpdesk_common.database import utcnow
from helpdesk_common.errors import Forbidden, HelpdeskError, InvalidTransition, ValidationFailed
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage, stage_many

from . import contacts, custom_fields, organisations, sla, ticket_lists
from .exceptions import idempotency_key_reused, ticket_not_found
from .models import (Contact, ContactIdentifier, Organisation, HistoryRecord, IdempotencyKey, Message, MessageKey, Outbox, ProcessedEvent,
                     SlaClock, Ticket)
from .sla import SlaPolicies
from .workflow import Workflow

STAFF = ("admin", "agent", "system")
CHANGEABLE = ("status", "priority", "severity", "assignee", "team", "tier", "tags", "custom_fields")
ROUTED = ("assignee", "team", "tier")
"""Routing decides these (it is their one writer); the tickets service only applies its decisions."""
NOT_NULL = ("status", "priority", "tier", "tags", "custom_fields")


@dataclass(frozen=True)
class Rules:
    """An organisation's settings that shape tickets: the workflow, how numbers look, the SLA policies
    (None: no SLA clocks are kept)."""

    workflow: Workflow
    number_format: str = "HD-{seq:06d}"
    sla: Optional[SlaPolicies] = None
    phone_region: Optional[str] = None  # how phone numbers without +<country code> are read (ISO code, NL)
    problem_solves_incidents: bool = True  # solving a problem ticket solves its open incidents (problems.py)

    def __post_init__(self):
        now = utcnow()  # a malformed format fails at start-up, not on the first ticket
        # "{{seq}}" contains "{seq" yet renders the same text for every ticket: compare two numbers.
        if "{seq" not in self.number_format or self.number_for(1, now) == self.number_for(2, now):
            raise ValueError("the ticket number format must contain {seq} to stay unique")

    def number_for(self, seq, created_at):
        return self.number_format.format(seq=seq, year=created_at.year)


def iso(moment):
    return moment.isoformat() if moment is not None else None


def ticket_view(ticket, rules: Optional[Rules] = None, now=None, clocks=None):
    """The ticket as the API and the events show it.

    With ``rules`` that have SLA policies, ``sla`` tells the state of the ticket's SLA clocks at ``now``
    (``clocks``, or the ticket's own); otherwise it is None.
    """
    sla_state = None
    if rules is not None and rules.sla is not None:
        sla_state = sla.state(ticket.sla_clocks if clocks is None else clocks, rules.sla, now or utcnow())
    return {
        "number": ticket.number, "subject": ticket.subject, "description": ticket.description,
        "requester": requester_view(ticket),
        "channel": ticket.channel, "priority": ticket.priority, "severity": ticket.severity,
        "status": ticket.status, "team": ticket.team, "tier": ticket.tier, "assignee": ticket.assignee,
        "language": ticket.language, "category": ticket.category, "tags": list(ticket.tags or []),
        "custom_fields": dict(ticket.custom_fields or {}), "version": ticket.version,
        "created_at": iso(ticket.created_at), "updated_at": iso(ticket.updated_at),
        "first_response_at": iso(ticket.first_response_at), "resolved_at": iso(ticket.resolved_at),
        "closed_at": iso(ticket.closed_at), "sla": sla_state, "merged_into": ticket.merged_into,
    }


def requester_view(ticket):
    """Who asked: the address the request came from (replies go there) and the contact it belongs to.

    Tickets from before contacts had several identifiers have no ``requester_email``: their contact's. A
    requester whose personal data was erased has none: an empty address."""
    contact = ticket.requester
    return {"email": ticket.requester_email or (contact.email if contact else None) or "",
            "name": (contact.name if contact is not None and contact.name else ticket.requester_name),
            "contact_id": ticket.requester_id, "contact_ambiguous": bool(ticket.requester_ambiguous),
            "organisation": organisations.ref(contact.organisation if contact is not None else None)}


HIDDEN_FROM_CUSTOMERS = ("sla",)  # the team's internal targets; customers get status updates instead


def shown_to(viewer, view):
    """The ticket view as ``viewer`` may see it."""
    if viewer.role in STAFF:
        return view
    return {key: value for key, value in view.items() if key not in HIDDEN_FROM_CUSTOMERS}


def mark_yours(session, viewer, views):
    """For a customer, each view says whether it is their own request (``yours``) or a colleague's."""
    if viewer.role != "customer" or not views:
        return views
    own = set(session.scalars(select(Ticket.number).where(Ticket.number.in_([v["number"] for v in views]),
                                                          _requested_by((viewer.email or "").lower()))))
    for view in views:
        view["yours"] = view["number"] in own
    return views


def message_view(message, number):
    return {"id": message.id, "ticket_number": number, "visibility": message.visibility,
            "author": message.author, "author_role": message.author_role, "body": message.body,
            "created_at": iso(message.created_at)}


def _publish(session, event_type, data, viewer, number):
    stage(session, Outbox, new_event(event_type, data, correlation_id=viewer.correlation_id, subject=number))


def _record(session, ticket, viewer, field, old, new, at):
    session.add(HistoryRecord(ticket_id=ticket.id, at=at, actor=viewer.actor, field=field, old=old, new=new))


def _contacts(session, requesters, region=None):
    """Resolve each requester to its contact by all its identifiers, creating contacts for new senders.

    Answers, per requester in order, ``(contact id or None, Resolution)`` (None: the identifiers belong
    to several contacts, never guessed between) or the ValidationFailed of an identifier that is not valid.
    """
    identifiers = []
    for requester in requesters:
        try:
            identifiers.append(contacts.requester_identifiers(requester, region))
        except HelpdeskError as error:
            identifiers.append(error)
    known = contacts.owners(session, sorted({i for ids in identifiers if isinstance(ids, list) for i in ids}))
    resolutions = [contacts.resolve(ids, known) if isinstance(ids, list) else ids for ids in identifiers]
    created = contacts.create_for_senders(session, [
        (r.email.lower(), r.name, res.identifiers) for r, res in zip(requesters, resolutions)
        if isinstance(res, contacts.Resolution) and not res.contact_ids])
    return [res if not isinstance(res, contacts.Resolution) else
            (res.contact_id if res.contact_ids else created[r.email.lower()], res)
            for r, res in zip(requesters, resolutions)]


def _reply_address(requester, contact, resolution):
    """The address to answer: the one the request came from, unless the contact was found by another
    identifier and does not own that address (a caller's placeholder address, when the phone number
    found the contact): then the contact's primary address."""
    email = requester.email.lower()
    if contact is None or not resolution.contact_ids or contact.id in resolution.owners.get(("email", email), ()):
        return email
    return contact.email or email


def _request_hash(command):
    canonical = json.dumps(command.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _visible(query, viewer, write=False, by_index=True):
    """Limit a ticket query to what ``viewer`` may see (anyone unknown sees nothing). A customer sees their
    own tickets and, when their organisation shares, its members' (``organisations``); ``write``: what
    they may change, their own only. ``by_index=False``: the same limit in a form no index serves, for a
    query that should find its tickets another way and only check each (the SLA counts, which start from
    the few running clocks rather than from every ticket of the agent's teams)."""
    if viewer.role in ("admin", "system"):
        return query
    if viewer.role == "agent":
        if viewer.teams:
            if not by_index:  # team names are never empty (TeamName): '' stands for "no team"
                return query.where(func.coalesce(Ticket.team, "").in_([*viewer.teams, ""]))
            return query.where(or_(Ticket.team.in_(viewer.teams), Ticket.team.is_(None)))
        return query
    if viewer.role == "customer":
        email = (viewer.email or "").lower()
        if write:
            return query.where(_requested_by(email))
        return query.where(or_(_requested_by(email), Ticket.requester_id.in_(organisations.colleagues_of(email))))
    return query.where(false())


def _requested_by(email):
    """Tickets sent from ``email``, or whose contact is known by that address."""
    return or_(Ticket.requester_email == email, Ticket.requester_id.in_(
        select(ContactIdentifier.contact_id).where(ContactIdentifier.kind == "email",
                                                   ContactIdentifier.value == email)))


def find_ticket(session: Session, number, viewer, for_update=False, write=False):
    """The ticket ``number`` if ``viewer`` may see it (``write``: may change it); otherwise the same error as
    a missing one.

    ``for_update`` locks the row (PostgreSQL) so that writers queue instead of failing each other's
    version check; SQLite transactions are serialised already.
    """
    query = _visible(select(Ticket).where(Ticket.number == str(number)), viewer, write)
    if for_update:
        query = query.with_for_update(of=Ticket)
    ticket = session.scalar(query)
    if ticket is None:
        raise ticket_not_found(number)
    return ticket


def open_ticket(session: Session, command, viewer, rules: Rules, idempotency_key=None, now=None):
    """Open a ticket. Returns ``(view, created)``; a repeated Idempotency-Key returns the first ticket."""
    (outcome,) = open_tickets(session, [(command, viewer, idempotency_key)], rules, now=now)
    if isinstance(outcome, HelpdeskError):
        raise outcome
    return outcome


CUSTOMER_CHANNEL = "web"  # a customer's own requests come through the portal (or its API), whatever they claim


def on_own_behalf(command, viewer):
    """A customer's request as the platform takes it: in their own name only (``helpdesk_common.authz``).

    The requester must be the token's address (403 ``requester_mismatch``); a phone number or social
    handle is refused (422 ``customer_identifier_refused``): contacts are found by them, so another
    contact's number would open the ticket in that person's name. Channel, team and priority are ignored
    (``web``, none, ``normal``). Anyone else's request is unchanged."""
    if viewer.role != "customer":
        return command
    authz.check_own_requester(command.requester, viewer)
    return command.model_copy(update={"channel": CUSTOMER_CHANNEL, **authz.CUSTOMER_DEFAULTS})


def _check_request(command, viewer, definitions):
    return custom_fields.check_values(None, command.custom_fields, definitions=definitions)


def open_tickets(session: Session, requests, rules: Rules, now=None):
    """Open several tickets in one transaction, with one statement per table for the whole batch.

    ``requests`` holds ``(command, viewer, idempotency_key)``; the answer holds, in the same order,
    ``(view, created)`` or the HelpdeskError that refused that request: one refusal spoils no other.
    A repeated Idempotency-Key (earlier, or twice in this batch) answers with the first ticket.
    ``now`` (default: the current time) is when they are opened; tests pass it to drive SLA clocks.

    The new rows are written as plain rows (``helpdesk_common.bulk``), never as ORM objects: a batch of
    intake's 500 mails spent most of its CPU in the ORM's bookkeeping of objects nobody reads back.
    """
    outcomes = [None] * len(requests)
    # A customer's request is brought to their own name first: a refused one never reaches the contacts
    # (no lookup by a borrowed number, no contact made for it).
    requests, refused = list(requests), {}
    for index, (command, viewer, key) in enumerate(requests):
        try:
            requests[index] = (on_own_behalf(command, viewer), viewer, key)
        except HelpdeskError as error:
            refused[index] = error
    with session.no_autoflush:
        definitions = custom_fields.load_definitions(session)
        kept = [index for index in range(len(requests)) if index not in refused]
        found = _contacts(session, [requests[index][0].requester for index in kept], rules.phone_region)
        resolved = dict(zip(kept, found))
        resolved.update(refused)
        keys = {key for _, _, key in requests if key}
        earlier = {(k.client, k.key): (k.ticket_id, k.request_hash) for k in session.execute(
            select(IdempotencyKey.client, IdempotencyKey.key, IdempotencyKey.ticket_id, IdempotencyKey.request_hash)
            .where(IdempotencyKey.key.in_(keys)))} if keys else {}
        fresh, repeats, answered, claimed = [], [], [], {}
        for index, (command, viewer, key) in enumerate(requests):
            try:
                if index in refused:
                    raise refused[index]
                values = _check_request(command, viewer, definitions)
                if isinstance(resolved[index], HelpdeskError):
                    raise resolved[index]
                digest = _request_hash(command) if key else None
                first = earlier.get((viewer.actor, key)) if key else None
                if first is not None:
                    if first[1] != digest:
                        raise idempotency_key_reused(key)
                    answered.append((index, first[0]))
                elif key and (viewer.actor, key) in claimed:
                    repeats.append((index, claimed[(viewer.actor, key)], digest, key))
                else:
                    if key:
                        claimed[(viewer.actor, key)] = (index, digest)
                    fresh.append((index, command, viewer, key, digest, values))
            except HelpdeskError as error:
                outcomes[index] = error
        if answered:
            first_tickets = _tickets_by_id(session, {ticket_id for _, ticket_id in answered}, rules)
            for index, ticket_id in answered:
                outcomes[index] = (ticket_view(first_tickets[ticket_id], rules, now), False)
        now = now or utcnow()
        _open_fresh(session, fresh, resolved, rules, now, outcomes)
        for index, (first_index, first_digest), digest, key in repeats:
            first = outcomes[first_index]
            outcomes[index] = (idempotency_key_reused(key) if digest != first_digest
                               else (first[0], False))
    return outcomes


def _tickets_by_id(session, ticket_ids, rules):
    """``{id: Ticket}`` in one query (with their SLA clocks when the rules keep them): one query for
    a batch asked again, where a ``session.get`` each (and a lazy load of its clocks) cost two."""
    query = select(Ticket).where(Ticket.id.in_(sorted(ticket_ids)))
    if rules.sla is not None:
        query = query.options(selectinload(Ticket.sla_clocks))
    return {ticket.id: ticket for ticket in session.scalars(query)}


def _open_fresh(session, fresh, resolved, rules, now, outcomes):
    """Write the tickets of ``fresh`` (requests neither refused nor repeated) with their history, SLA
    clocks, idempotency keys and ``ticket_created`` events; their ``(view, True)`` go into ``outcomes``."""
    if not fresh:
        return
    # The batch's contacts in one SELECT of the columns a view needs (a session.get each was 40 % of a
    # batch of mail's tickets; whole Contact objects were half of what was left).
    contact_ids = {resolved[index][0] for index, *_ in fresh} - {None}
    known_contacts = {row.id: row for row in session.execute(
        select(Contact.id, Contact.email, Contact.name, Organisation.id.label("organisation_id"),
               Organisation.name.label("organisation_name"), Organisation.shared.label("organisation_shared"))
        .outerjoin(Organisation, Organisation.id == Contact.organisation_id)
        .where(Contact.id.in_(contact_ids)))} if contact_ids else {}
    names = {}  # contact id -> the name a request gave to a contact that had none
    for index, command, *_ in fresh:
        contact = known_contacts.get(resolved[index][0])
        if contact is not None and command.requester.name and not contact.name:
            names.setdefault(contact.id, command.requester.name)
    for contact_id, name in names.items():  # rare (a contact created without a name): the ORM's way
        session.get(Contact, contact_id).name = name
    status, workflow_clocks = rules.workflow.initial, _ClockFactory(rules, now)
    created_at = iso(now)
    tickets, keys, history, events, clock_rows = [], [], [], [], []
    for (index, command, viewer, key, digest, values), ticket_id in zip(
            fresh, allocate_ids(session, Ticket.__table__, len(fresh))):
        contact_id, resolution = resolved[index]
        contact = known_contacts.get(contact_id) if contact_id is not None else None
        number = rules.number_for(ticket_id, now)
        ambiguous = resolution.is_ambiguous
        email = _reply_address(command.requester, contact, resolution)
        tags = list(dict.fromkeys(command.tags))
        contact_name = (contact.name or names.get(contact.id)) if contact is not None else None
        tickets.append({
            "id": ticket_id, "number": number, "subject": command.subject, "description": command.description,
            "requester_id": contact_id if contact is not None else None, "requester_email": email,
            "requester_name": command.requester.name, "requester_ambiguous": ambiguous,
            "channel": command.channel, "priority": command.priority, "severity": command.severity,
            "status": status, "team": command.team, "tier": 1, "assignee": None, "language": command.language,
            "category": command.category, "tags": tags, "custom_fields": values, "reopen_count": 0,
            "version": 1, "created_at": now, "updated_at": now})
        if key:
            keys.append({"client": viewer.actor, "key": key, "request_hash": digest, "ticket_id": ticket_id,
                         "created_at": now})
        history.append({"ticket_id": ticket_id, "at": now, "actor": viewer.actor, "field": "created",
                        "old": None, "new": {"channel": command.channel, "status": status}})
        if ambiguous:  # recorded where agents look: the ticket's history
            history.append({"ticket_id": ticket_id, "at": now, "actor": "system", "field": "contact_ambiguous",
                            "old": None, "new": [{"identifier": f"{kind}:{value}", "contacts": ids}
                                                 for kind, value, ids in resolution.ambiguous]})
        clocks, sla_state = workflow_clocks(ticket_id, command.priority, command.team, status)
        clock_rows.extend(clocks)
        # ticket_view's shape, from the row just built (the same answer as reading the ticket back)
        view = {
            "number": number, "subject": command.subject, "description": command.description,
            "requester": {"email": email, "name": contact_name or command.requester.name,
                          "contact_id": contact_id if contact is not None else None, "contact_ambiguous": ambiguous,
                          "organisation": None if contact is None or contact.organisation_id is None else {
                              "id": contact.organisation_id, "name": contact.organisation_name,
                              "shared": bool(contact.organisation_shared)}},
            "channel": command.channel, "priority": command.priority, "severity": command.severity,
            "status": status, "team": command.team, "tier": 1, "assignee": None, "language": command.language,
            "category": command.category, "tags": list(tags), "custom_fields": dict(values or {}), "version": 1,
            "created_at": created_at, "updated_at": created_at, "first_response_at": None, "resolved_at": None,
            "closed_at": None, "sla": sla_state, "merged_into": None,
        }
        events.append(new_event("ticket_created", {"ticket": view}, correlation_id=viewer.correlation_id,
                                subject=number))
        outcomes[index] = (view, True)
    insert_rows(session, Ticket.__table__, tickets)
    insert_rows(session, IdempotencyKey.__table__, keys)
    # Not insert_rows: on PostgreSQL it stores a None of a JSON column (``old``) as SQL NULL, where every
    # other writer of the history stores JSON null; a Core executemany keeps them alike (~0.02 ms a row).
    session.execute(insert(HistoryRecord.__table__), history)
    insert_rows(session, SlaClock.__table__, clock_rows)
    stage_many(session, Outbox, events)


CLOCK_COLUMNS = ("metric", "policy", "target_seconds", "started_at", "due_at", "warn_at", "pauses", "paused_at",
                 "stopped_at", "elapsed_seconds", "warned_at", "breached_at")


class _ClockFactory:
    """The SLA clocks of tickets opened together at ``now``: computed once per policy for the batch."""

    def __init__(self, rules, now):
        self.rules, self.now, self.policies, self.cache = rules, now, {}, {}

    def __call__(self, ticket_id, priority, team, status):
        """``(rows to insert, sla state of the view)`` for a new ticket."""
        policies = self.rules.sla
        if policies is None:
            return [], None
        if (priority, team) not in self.policies:
            self.policies[(priority, team)] = policies.policy_for(priority, team)
        policy = self.policies[(priority, team)]
        if policy is None:
            return [], None
        key = (policy.name, status)
        if key not in self.cache:
            category = self.rules.workflow.category(status)
            clocks = [SlaClock(metric=metric, started_at=self.now, pauses=[], elapsed_seconds=0.0)
                      for metric in sla.METRICS]
            for clock in clocks:
                sla.sync(clock, policy, first_response_at=None, category=category, now=self.now)
            self.cache[key] = ([{column: getattr(clock, column) for column in CLOCK_COLUMNS} for clock in clocks],
                               sla.state(clocks, policies, self.now))
        rows, state = self.cache[key]
        return [{**row, "ticket_id": ticket_id} for row in rows], state


def sync_clocks(session: Session, ticket, rules: Rules, now):
    """Bring the ticket's SLA clocks in line with it: its policy (priority, team), its status category
    (paused while pending, stopped once resolved), its first response. Idempotent."""
    if rules.sla is None:
        return
    policy = rules.sla.policy_for(ticket.priority, ticket.team)
    clocks = {clock.metric: clock for clock in ticket.sla_clocks}
    if policy is None:  # no policy covers the ticket any more: it has no clocks
        for clock in clocks.values():
            ticket.sla_clocks.remove(clock)
            session.delete(clock)
        return
    category = rules.workflow.category(ticket.status)
    for metric in sla.METRICS:
        clock = clocks.get(metric)
        if clock is None:  # a ticket no policy covered before (or older than the SLA clocks)
            clock = SlaClock(ticket_id=ticket.id, metric=metric, started_at=ticket.created_at, pauses=[],
                             elapsed_seconds=0.0)
            ticket.sla_clocks.append(clock)
        sla.sync(clock, policy, first_response_at=ticket.first_response_at, category=category, now=now)


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


def change_ticket(session: Session, number, changes, viewer, rules: Rules, now=None, decisions=()):
    """Apply a partial update; every field that really changed is recorded and announced.

    Assignee, team and tier are routing's: they come as ``decisions`` (the envelopes routing announced for
    the change a person asked for), applied first, as their events would be; given in ``changes`` they
    are refused."""
    if viewer.role not in STAFF:
        raise Forbidden("Only agents can change a ticket.", code="agents_only")
    return _change(session, number, changes, viewer, rules, now, decisions)


def customer_target(workflow, current, solved):
    """The status a customer's "it is solved" (``solved``) or "reopen" leads to from ``current``: the first
    transition the workflow allows into the resolved category, or (from a resolved status) back into the
    open category. None when the workflow allows no such step (closed is final; solved twice is nothing)."""
    if solved:
        wanted = "resolved" if workflow.category(current) not in ("resolved", "closed") else None
    else:
        wanted = "open" if workflow.category(current) == "resolved" else None
    return next((target for target in workflow.transitions.get(current, ())
                 if wanted and workflow.category(target) == wanted), None)


def customer_resolution(session: Session, number, solved, viewer, rules: Rules, now=None):
    """A customer marks their ticket solved, or reopens it, within the workflow (staff may do it for them).
    Anything else about the ticket stays the agents' to change."""
    if viewer.role not in (*STAFF, "customer"):
        raise Forbidden("Only the ticket's customer or an agent can do this.", code="role_not_allowed")
    ticket = find_ticket(session, number, viewer, for_update=True, write=True)
    target = customer_target(rules.workflow, ticket.status, solved)
    if target is None:
        raise InvalidTransition(
            f"Ticket {number} is {ticket.status!r}: it cannot be " + ("marked solved." if solved else "reopened."),
            code="invalid_transition", details=[{"field": "solved", "code": "invalid_transition",
                                                 "from": ticket.status}])
    return _change(session, number, TicketChanges(status=target), viewer, rules, now)


def _change(session, number, changes, viewer, rules, now=None, decisions=()):
    given = given_fields(changes, CHANGEABLE, NOT_NULL)
    routed = [field for field in given if field in ROUTED]
    if routed:
        raise ValidationFailed(f"{', '.join(routed)}: set by routing, not by the tickets service (PATCH the ticket "
                               "through the gateway, or PUT /api/v1/tickets/{number}/assignment).",
                               code="set_by_routing")
    ticket = find_ticket(session, number, viewer, for_update=True, write=True)
    now = now or utcnow()
    if decisions:
        apply_routing_batch(session, list(decisions), rules, now=now, views=False)
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
        return ticket_view(ticket, rules, now)
    ticket.updated_at = now
    for change in diff:
        _record(session, ticket, viewer, change["field"], change["old"], change["new"], now)
    sync_clocks(session, ticket, rules, now)
    session.flush()
    view = ticket_view(ticket, rules, now)
    _publish(session, "ticket_updated", {"ticket": view, "changes": diff, "actor": viewer.actor}, viewer,
             ticket.number)
    followers.on_change(session, ticket, diff, viewer, now)
    if ticket.status != old_status:
        _publish(session, "status_changed", {"ticket": view, "from_status": old_status,
                                             "to_status": ticket.status}, viewer, ticket.number)
        from . import problems  # noqa: PLC0415 - problems builds on this module
        problems.after_status_change(session, ticket, old_status, viewer, rules, now)
    return view


def _forward_to_survivor(session, duplicate, message, viewer, rules, now):
    """A customer (or intake, for a mail in the thread) wrote on a ticket merged into another: the words are
    kept on the duplicate, where they arrived, and copied to the survivor as an internal note naming the
    duplicate, as the merge copied the earlier ones (``links.merge``), so agents working the survivor see
    them and the survivor's own customer never does."""
    survivor = session.scalar(select(Ticket).where(Ticket.number == duplicate.merged_into))
    if survivor is None:
        return
    note = Message(ticket_id=survivor.id, visibility="internal", author=message.author,
                   author_role=message.author_role, body=f"[{duplicate.number}] {message.body}", created_at=now)
    session.add(note)
    survivor.updated_at = now
    session.flush()
    _record(session, survivor, viewer, "message.internal", None, note.id, now)
    _publish(session, "message_added", {"ticket": ticket_view(survivor, rules, now),
                                        "message": message_view(note, survivor.number)}, viewer, survivor.number)


def add_message(session: Session, number, command, viewer, rules: Rules, now=None, idempotency_key=None):
    """Add a public reply or an internal note. A customer's reply takes a pending ticket back to open.

    With ``idempotency_key`` (per author: e.g. an email's Message-ID), a repeated call returns the
    message the first one added; the same key for a different message or ticket is refused."""
    if command.visibility == "internal" and viewer.role not in STAFF:
        raise Forbidden("Internal notes are for agents only.", code="agents_only")
    ticket = find_ticket(session, number, viewer, for_update=True, write=True)
    digest = _request_hash(command) if idempotency_key else None
    if idempotency_key:
        digest = hashlib.sha256(f"{ticket.number}:{digest}".encode()).hexdigest()
        first = session.get(MessageKey, (viewer.actor, idempotency_key))
        if first is not None:
            if first.request_hash != digest:
                raise idempotency_key_reused(idempotency_key)
            return message_view(session.get(Message, first.message_id), ticket.number)
    now = now or utcnow()
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
    sync_clocks(session, ticket, rules, now)
    session.flush()
    _record(session, ticket, viewer, f"message.{command.visibility}", None, message.id, now)
    followers.on_message(session, ticket, message, viewer, command.mentions, now)  # mentions, followers
    if idempotency_key:
        # The primary key makes a concurrent repeat fail at commit; run_in_transaction reruns it, and the
        # rerun finds this key and answers with this message.
        session.add(MessageKey(client=viewer.actor, key=idempotency_key, request_hash=digest, message_id=message.id,
                               created_at=now))
    view = ticket_view(ticket, rules, now)
    result = message_view(message, ticket.number)
    _publish(session, "message_added", {"ticket": view, "message": result}, viewer, ticket.number)
    if ticket.merged_into and viewer.role not in STAFF and command.visibility == "public":
        _forward_to_survivor(session, ticket, message, viewer, rules, now)
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


def find_tickets(session: Session, query, viewer, rules: Optional[Rules] = None):
    """Tickets of a view matching the filters, in the asked order (newest first by default), a page at a
    time (``next_cursor`` for the next). Views, sorts and cursors: ``ticket_lists``."""
    ticket_lists.check_staff(query, viewer, STAFF)
    now = utcnow()
    statement = _visible(select(Ticket), viewer, by_index=False)
    if rules is not None and rules.sla is not None:
        statement = statement.options(selectinload(Ticket.sla_clocks))
    if query.requester:
        statement = statement.where(_requested_by(query.requester.lower()))
    condition = ticket_lists.view_condition(query.view, viewer, _workflow(rules), now, bool(query.status))
    if condition is not None:
        statement = statement.where(condition)
    statement = statement.where(*ticket_lists.filter_conditions(query))
    rows, cursor_of = ticket_lists.sorted_page(session, statement, query.sort, query.cursor, query.limit,
                                               narrow=query.view in ticket_lists.NARROW_VIEWS)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return {"items": [ticket_view(t, rules, now) for t in rows],
            "next_cursor": cursor_of(rows[-1]) if more and rows else None}


def count_tickets(session: Session, viewer, rules: Optional[Rules] = None, now=None):
    """The exact number of tickets in each list view (``ticket_lists.VIEWS``) that ``viewer`` may see."""
    if viewer.role not in STAFF:
        raise Forbidden("Counts of the ticket lists are for agents only.", code="agents_only")
    return ticket_lists.counts(session, lambda statement, by_index=True: _visible(statement, viewer, by_index=by_index),
                               viewer, _workflow(rules), now or utcnow())


def _workflow(rules):
    return rules.workflow if rules is not None else Workflow.load()


ROUTING_HANDLER = "tickets.apply_routing"


def apply_routing(session: Session, envelope, rules: Rules, now=None):
    """Take over what routing decided (an assignment, a queue, an escalation), once per event.

    Only fields that really change are written and announced, so routing's own ``ticket_updated`` echo
    stays quiet; the decision's reason is kept in the history beside the changes it made. Returns the
    ticket's view, or None for a repeat.
    """
    return apply_routing_batch(session, [envelope], rules, now=now)[0]


ROUTING_VIEWER_ROLE = "system"
DECISION_TYPES = ("ticket_assigned", "ticket_queued", "ticket_escalated")


def routing_decisions(envelopes):
    """``envelopes`` checked to be routing's decisions (each read again by :func:`_decision` as it applies)."""
    if not isinstance(envelopes, list) or not all(
            isinstance(e, dict) and e.get("type") in DECISION_TYPES and e.get("id") and isinstance(e.get("data"), dict)
            for e in envelopes):
        raise ValidationFailed("decisions: a list of routing's decision events.", code="invalid_decisions")
    return envelopes


def _decision(envelope):
    """The ticket fields a routing decision sets, validated as any change would be."""
    data, kind = envelope["data"], envelope["type"]
    if kind == "ticket_assigned":
        changes = {"assignee": data["assignee"], "tier": data.get("tier", 1)}
    elif kind == "ticket_queued":
        changes = {"assignee": None, "tier": data.get("tier", 1)}
    elif kind == "ticket_escalated":
        changes = {"tier": data["to_tier"], **({"team": data["to_team"]} if data.get("to_team") else {})}
    else:
        raise ValueError(f"not a routing decision: {kind}")
    if kind != "ticket_escalated" and (data.get("team") or data.get("sequence") is not None):
        # A numbered decision states routing's whole placement, a team of null included (cleared by
        # hand); an older one without a team chose none, and the ticket kept the one it had.
        changes["team"] = data.get("team")
    if data.get("priority"):
        changes["priority"] = data["priority"]
    command = TicketChanges.model_validate(changes, strict=False)
    return {field: getattr(command, field) for field in given_fields(command, CHANGEABLE, NOT_NULL)}


_DECIDED = ("id", "number", "assignee", "team", "tier", "priority", "routing_sequence")  # what a decision reads


def _is_newer(envelope, applied):
    """Whether a decision comes after the last one applied to its ticket (``applied``: that one's
    sequence). Routing numbers its decisions per ticket; one arriving late (redelivered, or overtaken by a
    change made by hand and applied at once) changes nothing. A decision without a number (from a routing
    older than the numbering) is applied as it comes."""
    sequence = envelope["data"].get("sequence")
    return sequence is None or sequence > (applied or 0)


def _tickets_for_decisions(session, todo, rules, views):
    """number -> the ticket each decision of ``todo`` (``(index, envelope, changes)``) applies to, read and
    locked in one query in id order (two batches never deadlock). With ``views``, or for a ticket a
    decision changes, the ORM object (with its SLA clocks, which follow priority and team); for the others
    a plain row of the columns a decision compares: loading ORM objects was two thirds of a batch of
    decisions that change nothing (a new ticket queued where it already is), 0.2 ms a decision."""
    numbers = sorted({str(envelope["data"]["ticket_number"]) for _, envelope, _ in todo})
    if not numbers:
        return {}
    table = Ticket.__table__
    rows = {row.number: row for row in session.execute(
        select(*[table.c[column] for column in _DECIDED]).where(table.c.number.in_(numbers))
        .order_by(table.c.id).with_for_update())}
    state = {number: dict(row._mapping) for number, row in rows.items()}
    changing = set(numbers) if views else set()
    for _, envelope, changes in todo:  # in order: a ticket's second decision compares with the first's outcome
        current = state.get(str(envelope["data"]["ticket_number"]))
        if current is None or not _is_newer(envelope, current["routing_sequence"]):
            continue
        current["routing_sequence"] = envelope["data"].get("sequence") or current["routing_sequence"]
        if any(current[field] != new for field, new in changes.items()):
            changing.add(current["number"])
            current.update(changes)
    tickets = {number: _Unchanged(**row._mapping) for number, row in rows.items() if number not in changing}
    if changing:
        query = select(Ticket).where(Ticket.number.in_(sorted(changing))).order_by(Ticket.id)
        if rules.sla is not None:  # their clocks follow the new priority and team: read them in one query
            query = query.options(selectinload(Ticket.sla_clocks))
        tickets.update((ticket.number, ticket) for ticket in session.scalars(query))
    return tickets


class _Unchanged:
    """A ticket no decision of the batch changes: the columns it is compared on, read only."""

    def __init__(self, **columns):
        self.__dict__.update(columns)

    def __setattr__(self, name, value):
        raise AttributeError(f"ticket {self.number}: a decision found to change nothing changed {name}")


def apply_routing_batch(session: Session, envelopes, rules: Rules, now=None, views=True):
    """Apply many routing decisions in the caller's transaction (the write-back's group commit).

    One answer per envelope, in order: the ticket's view after that decision, or None for an event
    already applied (in an earlier transaction or earlier in this batch). ``views=False`` (the service,
    which announces changes and answers nobody): answers are True for an applied decision, and a view is
    built only for a ticket that changed (its ``ticket_updated``): most decisions about new tickets only
    confirm what the ticket already says, and a view (with its SLA state) costs more than the rest. The
    tickets are read and locked in one query (:func:`_tickets_for_decisions`), history rows and
    ``ticket_updated`` events are written with one statement each. A missing ticket or a malformed
    decision raises, failing the whole batch (the caller reruns each event alone); a ticket changed
    meanwhile by someone else fails the version check at flush (StaleDataError), as ``change_ticket`` does.
    """
    now = now or utcnow()
    fresh = first_deliveries(session, ProcessedEvent, [envelope["id"] for envelope in envelopes], ROUTING_HANDLER)
    todo = []
    for index, envelope in enumerate(envelopes):
        if envelope["id"] in fresh:
            fresh.discard(envelope["id"])  # a second copy in the same batch is a repeat
            todo.append((index, envelope, _decision(envelope)))
    tickets = _tickets_for_decisions(session, todo, rules, views)
    answers, history, events, pending, touched = [None] * len(envelopes), [], [], [], set()
    applied = {number: ticket.routing_sequence for number, ticket in tickets.items()}  # as decisions apply

    def announce():  # views are taken after a flush: they show the version the change got
        session.flush()
        for index, ticket, diff, viewer in pending:
            view = ticket_view(ticket, rules, now) if views or diff else None
            answers[index] = view if views else True
            if diff:
                events.append(new_event("ticket_updated", {"ticket": view, "changes": diff, "actor": viewer.actor},
                                        correlation_id=viewer.correlation_id, subject=ticket.number))
        pending.clear()
        touched.clear()

    for index, envelope, decision in todo:
        data = envelope["data"]
        ticket = tickets.get(str(data["ticket_number"]))
        if ticket is None:
            raise ticket_not_found(data["ticket_number"])
        newer = _is_newer(envelope, applied[ticket.number])
        if newer:
            applied[ticket.number] = data.get("sequence") or applied[ticket.number]
        if ticket.id in touched:  # a second decision for the same ticket: the first gets its own version
            announce()
        # Who decided: routing, or the person who set it by hand (routing names them in the decision).
        viewer = Viewer(actor=data.get("actor") or "routing", role=ROUTING_VIEWER_ROLE,
                        correlation_id=envelope.get("correlation_id"))
        diff = []
        # One overtaken by a newer decision (an escalation whose assignment came first) changes nothing,
        # but is recorded: the history tells what routing decided, and why.
        for field, new in (decision if newer else {}).items():
            old = getattr(ticket, field)
            if old != new:
                setattr(ticket, field, new)
                diff.append({"field": field, "old": old, "new": new})
        if diff:
            ticket.updated_at = now
            sync_clocks(session, ticket, rules, now)
            touched.add(ticket.id)
        rows = [{"field": change["field"], "old": change["old"], "new": change["new"]} for change in diff]
        rows.append({"field": envelope["type"], "old": None,
                     "new": {"reason": data.get("reason"), "rule": data.get("rule"), "trigger": data.get("trigger")}})
        history.extend({"ticket_id": ticket.id, "at": now, "actor": viewer.actor, **row} for row in rows)
        pending.append((index, ticket, diff, viewer))
    announce()
    _record_sequences(session, tickets, applied)
    if history:
        session.execute(insert(HistoryRecord.__table__), history)
    stage_many(session, Outbox, events)
    return answers


def _record_sequences(session, tickets, applied):
    """Each ticket's last applied decision, by one Core statement: a number only routing's decisions read,
    so writing it neither bumps the ticket's version nor shows in its history."""
    rows = [{"key": tickets[number].id, "sequence": sequence} for number, sequence in applied.items()
            if sequence != tickets[number].routing_sequence]
    if rows:
        table = Ticket.__table__
        session.execute(update(table).where(table.c.id == bindparam("key"))
                        .values(routing_sequence=bindparam("sequence")), rows)


# --- SLA timer ------------------------------------------------------------------------------------

SLA_VIEWER = Viewer(actor="sla", role="system")
SLA_BATCH = 200


def _running_clock():
    return and_(SlaClock.stopped_at.is_(None), SlaClock.paused_at.is_(None))


def check_sla(session: Session, rules: Rules, now, limit=SLA_BATCH):
    """Announce every SLA warning and breach due at ``now``: ``sla_warning`` then ``sla_breached``, each
    exactly once per clock, staged in the outbox and recorded in the ticket's history.

    Safe with several replicas: the candidates are locked with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
    (another replica takes other clocks instead of waiting), and each announcement is claimed by a
    conditional UPDATE (``warned_at IS NULL`` / ``breached_at IS NULL``) that only one transaction can
    win (SQLite serialises write transactions). Returns ``[(ticket_number, event_type, metric)]``; at
    most ``limit`` clocks per call (call again while it returns a full batch).
    """
    if rules.sla is None:
        return []
    due = or_(and_(SlaClock.warned_at.is_(None), SlaClock.warn_at <= now),
              and_(SlaClock.breached_at.is_(None), SlaClock.due_at <= now))
    candidates = list(session.scalars(
        select(SlaClock.id).where(_running_clock(), due).order_by(SlaClock.due_at, SlaClock.id).limit(limit)
        .with_for_update(skip_locked=True)))
    announced = []
    for clock_id in candidates:
        for event_type, mark, moment in (("sla_warning", SlaClock.warned_at, SlaClock.warn_at),
                                         ("sla_breached", SlaClock.breached_at, SlaClock.due_at)):
            claimed = session.execute(
                update(SlaClock).where(SlaClock.id == clock_id, mark.is_(None), moment <= now, _running_clock())
                .values({mark: now}).execution_options(synchronize_session=False)).rowcount
            if claimed:
                announced.append(_announce(session, clock_id, event_type, rules, now))
    return announced


def backfill_sla_clocks(session: Session, rules: Rules, now, after_id=0, limit=SLA_BATCH):
    """Give clocks to open tickets that have none: tickets opened before the SLA clocks were deployed
    (new tickets get theirs when they open). Counted from when the ticket opened, so an old ticket may
    be overdue at once and the timer announces its breach; a first response already given stops the
    first-response clock at that moment. Resolved and closed tickets are left alone (their clocks would
    only tell a made-up story). What happened while an old ticket was pending is unknown, so that time
    counts as running.

    Runs a page of at most ``limit`` tickets with ``id > after_id``; returns ``(clocked, last_id)``,
    ``last_id`` None once there is nothing after this page. Safe with several replicas: the unique key
    (ticket, metric) refuses a second clock, and the rerun transaction then skips the ticket.
    """
    if rules.sla is None:
        return 0, None
    workflow = rules.workflow
    open_statuses = [s for s in workflow.statuses if workflow.category(s) not in ("resolved", "closed")]
    without_clocks = ~select(SlaClock.id).where(SlaClock.ticket_id == Ticket.id).exists()
    page = list(session.scalars(
        select(Ticket).where(Ticket.id > after_id, Ticket.status.in_(open_statuses), without_clocks)
        .order_by(Ticket.id).limit(limit).options(selectinload(Ticket.sla_clocks))))
    clocked = 0
    for ticket in page:
        sync_clocks(session, ticket, rules, now)
        clocked += bool(ticket.sla_clocks)
    session.flush()
    return clocked, (page[-1].id if len(page) == limit else None)


def _announce(session, clock_id, event_type, rules, now):
    clock = session.get(SlaClock, clock_id, populate_existing=True)
    ticket = session.get(Ticket, clock.ticket_id)
    policy = rules.sla.named(clock.policy) or rules.sla.policy_for(ticket.priority, ticket.team)
    # a policy dropped from the file since the clock started: its due time is all that is left
    spent = sla.elapsed(clock, policy, now) if policy is not None else float(clock.target_seconds)
    data = {"ticket_number": ticket.number, "metric": clock.metric, "policy": clock.policy,
            "priority": ticket.priority, "team": ticket.team, "tier": ticket.tier,
            "target_seconds": clock.target_seconds, "elapsed_seconds": round(spent, 3),
            "remaining_seconds": round(clock.target_seconds - spent, 3), "due_at": iso(clock.due_at), "at": iso(now)}
    if event_type == "sla_warning":
        data["threshold"] = policy.warning_threshold if policy is not None else rules.sla.warning_threshold
    _record(session, ticket, SLA_VIEWER, event_type, None,
            {"metric": clock.metric, "policy": clock.policy, "due_at": iso(clock.due_at),
             "elapsed_seconds": data["elapsed_seconds"], "target_seconds": clock.target_seconds}, now)
    _publish(session, event_type, data, SLA_VIEWER, ticket.number)
    return ticket.number, event_type, clock.metric


def link_ticket_contact(session: Session, number, contact_id, viewer, rules: Rules, now=None):
    """An agent links a ticket to its contact (after an ambiguous sender, or to correct one): recorded in
    the history and announced as ``ticket_updated``."""
    if viewer.role not in STAFF:
        raise Forbidden("Only agents link tickets to contacts.", code="agents_only")
    ticket = find_ticket(session, number, viewer, for_update=True, write=True)
    contact = contacts.get(session, contact_id, viewer=viewer)  # the ticket would show a hidden contact's name
    now = now or utcnow()
    old = {"contact_id": ticket.requester_id, "contact_ambiguous": bool(ticket.requester_ambiguous)}
    ticket.requester, ticket.requester_ambiguous, ticket.updated_at = contact, False, now
    session.flush()
    new = {"contact_id": contact.id, "contact_ambiguous": False}
    _record(session, ticket, viewer, "requester", old, new, now)
    view = ticket_view(ticket, rules, now)
    _publish(session, "ticket_updated", {"ticket": view, "changes": [{"field": "requester", "old": old, "new": new}]},
             viewer, ticket.number)
    return view


def merge_contacts(session: Session, contact_id, other_id, viewer, rules: Rules, now=None):
    """Merge contact ``other_id`` into ``contact_id`` (``contacts.merge``); each ticket whose requester
    moved is announced as ``ticket_updated``, so a consumer mirroring tickets sees the new requester."""
    view, numbers = contacts.merge(session, contact_id, other_id, viewer.actor, viewer=viewer)
    now = now or utcnow()
    if numbers:
        change = [{"field": "requester", "old": {"contact_id": other_id}, "new": {"contact_id": contact_id}}]
        for ticket in session.scalars(select(Ticket).where(Ticket.number.in_(numbers)).order_by(Ticket.id)):
            _publish(session, "ticket_updated", {"ticket": ticket_view(ticket, rules, now), "changes": change,
                                                 "actor": viewer.actor}, viewer, ticket.number)
    return view


from . import followers  # noqa: E402  (followers reads tickets through this module: imported last)
