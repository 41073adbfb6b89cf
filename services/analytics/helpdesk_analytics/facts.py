"""Building the read model from events: plain functions of a SQLAlchemy session, no nameko in here.

:func:`ingest` takes a batch of event envelopes of any types, in any order, any number of times:

- an event takes effect once (``processed_events``, in the caller's transaction);
- a ticket's snapshot fields (status, team, agent, priority, ...) come from the ticket view with the highest
  ``version`` seen, so an older view arriving late changes nothing;
- dated moments (status changes, reopens, agents' replies, escalations) are rows keyed by what names them in
  the ticket's history, so a moment told twice (a repeat under a new id, the rebuild's export) is one row;
- counters and durations are recomputed from those rows and the snapshot (:func:`refresh`), never incremented;
- an event type analytics does not read is ignored.

Set-based: a batch is first folded in memory (the newest view per ticket, one row per moment, survey, chat,
suggestion), then written with a few multi-row statements (``INSERT ... ON CONFLICT``, the same on SQLite and
PostgreSQL) whose conflict clauses hold the merge rules (newest version wins, breaches only add, a chat's
fields only fill in), so what is already stored is never read back to be merged in Python: two replicas
writing one ticket meet on the row, not on a stale copy. The counters and durations of the tickets the batch
touched are then derived from the stored rows, read with one query per table and written with one statement.
"""
from datetime import datetime, timezone
from functools import lru_cache

from sqlalchemy import case, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from helpdesk_common.business_hours import business_seconds
from helpdesk_common.inbox import first_deliveries

from .models import (BACKLOG_KEY, AgentName, BacklogTotal, ChatFact, Deflection, ProcessedEvent, SurveyAnswer,
                     TicketActivity, TicketFact)
from .settings import SOLVED
from .surge_models import SurgeTicket

HANDLER = "analytics.ingest"
TICKET_VIEW_EVENTS = ("ticket_created", "ticket_updated", "status_changed", "message_added")
STAFF_ROLES = ("agent", "admin")
SNAPSHOT = ("status", "team", "channel", "priority", "category", "language", "tier")
# the columns a ticket view sets (newest version wins) and those derived from the activities (refresh)
VIEW_COLUMNS = SNAPSHOT + ("agent", "status_category", "created_at", "first_response_at", "resolved_at",
                           "closed_at", "sla_policy")
DERIVED = ("reopens", "escalations", "tier_moves", "agent_replies", "last_activity_at", "solved_at", "settled_at",
           "settled_category",
           "first_response_seconds", "first_response_business_seconds", "resolution_seconds",
           "resolution_business_seconds")
NEW_FACT = dict(version=0, tier=1, reopens=0, escalations=0, tier_moves=0, agent_replies=0,
                sla_first_response_breached=False, sla_resolution_breached=False, sla_warned=False)
CHUNK = 500  # rows per IN list or multi-row statement: within SQLite's and PostgreSQL's parameter limits


def moment(value):
    """An aware datetime from an ISO string (events carry JSON), or None."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def stamp(value):
    """A moment as a key: the same instant always gives the same text, whatever offset it was written with."""
    return moment(value).astimezone(timezone.utc).isoformat()


def ingest(session, events, settings):
    """Apply ``events`` (envelopes) to the read model once each; returns how many took effect."""
    fresh = first_deliveries(session, ProcessedEvent, [e["id"] for e in events], HANDLER)
    todo = list({e["id"]: e for e in events if e["id"] in fresh}.values())
    batch = _Batch(settings)
    for event in todo:
        handle = _HANDLERS.get(event.get("type"))
        if handle is not None:  # a type analytics does not read (or a newer platform's): ignored
            handle(batch, event.get("data") or {}, event)
    batch.write(session)
    for contact_id, numbers in batch.erasures:
        erase_comments(session, contact_id, numbers)
        erase_wording(session, numbers)
    return len(todo)


def erase_wording(session, numbers):
    """The surge detector's copy of the erased contact's tickets' subject and text goes; the ticket still
    counts in its hour (its terms emptied: analysed, nothing to group by)."""
    session.execute(update(SurgeTicket).where(SurgeTicket.number.in_(numbers)).values(subject="", text="", terms="")
                    .execution_options(synchronize_session=False))


def erase_comments(session, contact_id, numbers):
    found = SurveyAnswer.ticket.in_(numbers)
    if contact_id:
        found = or_(found, SurveyAnswer.contact_id == contact_id)
    session.execute(update(SurveyAnswer).where(found).values(comment=None, contact_id=None)
                    .execution_options(synchronize_session=False))


def ingest_export(session, items, settings):
    """Apply a page of the tickets service's history export (``export_history``) to the read model.

    The same moments the live events tell, under the same keys (a status change by its time, a reply by its
    message id) and the ticket's snapshot by version: run while events keep arriving, each moment is still
    one row. What only other services' events tell (escalations, surveys, chats) is kept as it is."""
    batch = _Batch(settings)
    for item in items:
        ticket = item["ticket"]
        number = ticket["number"]
        batch.view(ticket)
        changes = item.get("status_changes") or []
        initial = changes[0]["old"] if changes else ticket.get("status")
        batch.activity(number, "status", stamp(ticket["created_at"]), ticket["created_at"],
                       value=settings.category(initial), version=0)
        for change in changes:
            before, after = settings.category(change["old"]), settings.category(change["new"])
            batch.activity(number, "status", stamp(change["at"]), change["at"], value=after, version=0)
            if before in SOLVED and after not in SOLVED:
                batch.activity(number, "reopen", stamp(change["at"]), change["at"], version=0)
        for message in item.get("messages") or []:
            if message.get("visibility") == "public" and message.get("author_role") in STAFF_ROLES:
                # the assignee now: the export cannot tell who held the ticket then (the live event can)
                batch.activity(number, "reply", message["id"], message["created_at"], actor=ticket.get("assignee"))
    batch.write(session)
    return len(items)


def _insert(session):
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _chunks(rows):
    rows = list(rows)
    for start in range(0, len(rows), CHUNK):
        yield rows[start:start + CHUNK]


def _newest(stored, incoming, name):
    """The incoming view's ``name`` if its version is at least the stored one's (ties: the later arrival)."""
    return case((incoming.version >= stored.version, getattr(incoming, name)), else_=getattr(stored, name))


class _Batch:
    """What one batch changes, folded in memory by key before anything is written."""

    def __init__(self, settings):
        self.settings = settings
        self.views = {}  # ticket -> the newest view of the batch (its fact row's fields)
        self.breaches = {}  # ticket -> {"sla_first_response_breached": .., "sla_resolution_breached": .., policy}
        self.warned = set()
        self.activities = {}  # (ticket, kind, key) -> row: the first telling of a moment
        self.agents, self.surveys, self.chats, self.shown, self.deflected = {}, {}, {}, {}, {}
        self.touched = set()
        self.erasures = []  # (contact id, ticket numbers) of contacts erased in this batch

    # --- folding ---------------------------------------------------------------------------------

    def view(self, ticket):
        """Keep the ticket view's fields if it is the newest version of the batch."""
        number, version = ticket["number"], int(ticket.get("version") or 0)
        self.touched.add(number)
        held = self.views.get(number)
        sla = ticket.get("sla") or {}
        if held is not None:
            # a breach never heals: an older view's flag still counts
            first, resolution = held["sla_first_response_breached"], held["sla_resolution_breached"]
            if version < held["version"]:
                held["sla_first_response_breached"] = first or bool(sla.get("first_response_breached"))
                held["sla_resolution_breached"] = resolution or bool(sla.get("resolution_breached"))
                return
        else:
            first = resolution = False
        self.views[number] = {
            "number": number, "version": version, **{name: ticket.get(name) for name in SNAPSHOT},
            "tier": ticket.get("tier") or 1, "agent": ticket.get("assignee"),
            "status_category": self.settings.category(ticket.get("status")),
            "created_at": moment(ticket.get("created_at")),
            "first_response_at": moment(ticket.get("first_response_at")),
            "resolved_at": moment(ticket.get("resolved_at")), "closed_at": moment(ticket.get("closed_at")),
            "sla_policy": sla.get("policy"),
            "sla_first_response_breached": first or bool(sla.get("first_response_breached")),
            "sla_resolution_breached": resolution or bool(sla.get("resolution_breached"))}

    def breach(self, number, metric, policy):
        self.touched.add(number)
        held = self.breaches.setdefault(number, {"sla_first_response_breached": False,
                                                 "sla_resolution_breached": False, "sla_policy": None})
        held["sla_first_response_breached" if metric == "first_response" else "sla_resolution_breached"] = True
        held["sla_policy"] = held["sla_policy"] or policy

    def warn(self, number):
        self.touched.add(number)
        self.warned.add(number)

    def activity(self, ticket, kind, key, at, value=None, actor=None, version=0):
        self.touched.add(ticket)
        self.activities.setdefault((ticket, kind, str(key)), dict(
            ticket=ticket, kind=kind, key=str(key), at=moment(at), value=value, actor=actor, version=version))

    # --- writing ---------------------------------------------------------------------------------

    def write(self, session):
        statements = _statements(session.get_bind().dialect.name)
        touched = sorted(self.touched)
        # every ticket the batch tells of has its row first (empty if its view is not seen yet), locked, and its
        # place in the backlog totals read before anything moves it
        _execute(session, statements["new_facts"], ({**NEW_FACT, "number": number} for number in touched))
        before = _backlog_places(session, touched)
        if self.views:
            _execute(session, statements["views"], ({**NEW_FACT, **row} for _, row in sorted(self.views.items())))
        if self.breaches:
            _execute(session, statements["breaches"],
                     ({**NEW_FACT, "number": number, **flags} for number, flags in sorted(self.breaches.items())))
        if self.warned:
            _execute(session, statements["warned"],
                     ({**NEW_FACT, "number": number, "sla_warned": True} for number in sorted(self.warned)))
        if self.activities:
            _execute(session, statements["activities"], (row for _, row in sorted(self.activities.items())))
        if self.agents:
            _execute(session, statements["agents"], (row for _, row in sorted(self.agents.items())))
        if self.surveys:
            _execute(session, statements["surveys"], (row for _, row in sorted(self.surveys.items())))
        if self.chats:
            _execute(session, statements["chats"], (row for _, row in sorted(self.chats.items())))
        if self.shown:
            _execute(session, statements["shown"], ({"suggestion_id": key, "shown_at": at, "deflected_at": None}
                                                    for key, at in sorted(self.shown.items())))
        if self.deflected:
            _execute(session, statements["deflected"], (row for _, row in sorted(self.deflected.items())))
        if touched:
            after = refresh(session, touched, self.settings)
            _move_backlog_totals(session, before, after)


@lru_cache(maxsize=None)
def _statements(dialect):
    """The batch's upserts for ``dialect``, built once: building them (each ``excluded`` is a new alias of the
    table, a proxy per column) cost more CPU than SQLAlchemy's compiled cache saves per execution."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    built = {}
    facts = TicketFact.__table__.c
    built["new_facts"] = insert(TicketFact.__table__).on_conflict_do_nothing(index_elements=["number"])
    statement = insert(TicketFact.__table__)
    incoming = statement.excluded
    merge = {name: _newest(facts, incoming, name) for name in VIEW_COLUMNS}
    merge["version"] = case((incoming.version >= facts.version, incoming.version), else_=facts.version)
    merge.update(_breaches_kept(facts, incoming))
    built["views"] = statement.on_conflict_do_update(index_elements=["number"], set_=merge)
    statement = insert(TicketFact.__table__)
    incoming = statement.excluded
    merge = {**_breaches_kept(facts, incoming), "sla_policy": func.coalesce(facts.sla_policy, incoming.sla_policy)}
    built["breaches"] = statement.on_conflict_do_update(index_elements=["number"], set_=merge)
    statement = insert(TicketFact.__table__)
    built["warned"] = statement.on_conflict_do_update(index_elements=["number"],
                                                      set_={"sla_warned": statement.excluded.sla_warned})
    built["activities"] = insert(TicketActivity.__table__).on_conflict_do_nothing(
        index_elements=["ticket", "kind", "key"])
    statement = insert(AgentName.__table__)
    incoming = statement.excluded
    built["agents"] = statement.on_conflict_do_update(index_elements=["assignee"], set_={
        "name": incoming.name, "email": incoming.email})
    statement = insert(SurveyAnswer.__table__)
    stored, incoming = SurveyAnswer.__table__.c, statement.excluded
    # the answer kept is the latest (submitted_at, then answer_id), whatever the arrival order
    built["surveys"] = statement.on_conflict_do_update(
        index_elements=["survey_id", "kind"],
        set_={name: incoming[name] for name in ("answer_id", "submitted_at", "score", "comment", "ticket",
                                                "channel", "team", "agent", "language", "contact_id")},
        where=tuple_(incoming.submitted_at, incoming.answer_id) > tuple_(stored.submitted_at, stored.answer_id))
    statement = insert(ChatFact.__table__)
    stored, incoming = ChatFact.__table__.c, statement.excluded
    # each field, once known, stays: events of one chat only ever add to what is known
    built["chats"] = statement.on_conflict_do_update(index_elements=["id"], set_={
        name: func.coalesce(stored[name], incoming[name]) for name in CHAT_FIELDS})
    statement = insert(Deflection.__table__)
    stored, incoming = Deflection.__table__.c, statement.excluded
    built["shown"] = statement.on_conflict_do_update(index_elements=["suggestion_id"], set_={
        "shown_at": func.coalesce(stored.shown_at, incoming.shown_at)})
    statement = insert(Deflection.__table__)
    stored, incoming = Deflection.__table__.c, statement.excluded
    # the deflection tells when its suggestion was shown; the first deflection stays
    built["deflected"] = statement.on_conflict_do_update(index_elements=["suggestion_id"], set_={
        "shown_at": func.coalesce(incoming.shown_at, stored.shown_at),
        "deflected_at": func.coalesce(stored.deflected_at, incoming.deflected_at)})
    statement = insert(TicketFact.__table__)
    incoming = statement.excluded
    # every row exists (written first): the insert is the one statement both databases run as a multi-row update
    built["derived"] = statement.on_conflict_do_update(index_elements=["number"],
                                                       set_={name: incoming[name] for name in DERIVED})
    statement = insert(TicketActivity.__table__)
    built["previous"] = statement.on_conflict_do_update(index_elements=["ticket", "kind", "key"],
                                                        set_={"previous": statement.excluded.previous})
    statement = insert(BacklogTotal.__table__)
    built["backlog_totals"] = statement.on_conflict_do_update(index_elements=list(BACKLOG_KEY), set_={
        "tickets": BacklogTotal.__table__.c.tickets + statement.excluded.tickets})
    # RETURNING makes SQLAlchemy send a chunk as one multi-row VALUES statement (its "insertmanyvalues";
    # without it an ON CONFLICT insert goes to psycopg2's executemany, a round trip per row)
    return {name: statement.returning(*statement.table.primary_key.columns) for name, statement in built.items()}


def _breaches_kept(stored, incoming):
    """A breach never heals: a flag once set stays, whichever row tells it."""
    return {flag: stored[flag] | incoming[flag] for flag in ("sla_first_response_breached", "sla_resolution_breached")}


def _execute(session, statement, rows):
    """``statement`` (of :func:`_statements`) over ``rows`` (dicts alike), a chunk at a time: one multi-row
    statement each (Core, not the ORM's statement per row)."""
    connection = session.connection()
    for rows in _chunks(rows):
        connection.execute(statement, rows)


FACT_READ = ("number", "status_category", "created_at", "first_response_at", "resolved_at", "closed_at",
             "sla_policy", "team", "agent", "channel", "priority", "category", "language")


def refresh(session, numbers, settings):
    """Recompute the counters and durations of the tickets ``numbers`` from their stored activities and
    snapshot (two reads, one write for the lot, and one more for the status moves whose previous category
    changed). Returns each ticket's place in the backlog totals now (:func:`_backlog_place`)."""
    facts, activities = {}, {number: [] for number in numbers}
    for chunk in _chunks(numbers):
        facts.update((row.number, row) for row in session.execute(
            select(*(TicketFact.__table__.c[name] for name in FACT_READ)).where(TicketFact.number.in_(chunk))))
        for row in session.execute(select(TicketActivity.__table__).where(TicketActivity.ticket.in_(chunk))):
            activities[row.ticket].append(row)
    derived, moved = {}, []
    for number in numbers:
        derived[number] = derive(facts[number], activities[number], settings)
        moved.extend(_previous_changed(activities[number]))
    statements = _statements(session.get_bind().dialect.name)
    _execute(session, statements["derived"], ({**NEW_FACT, "number": number, **derived[number]} for number in numbers))
    if moved:
        _execute(session, statements["previous"], moved)
    return {number: _backlog_place(facts[number], derived[number]["settled_category"]) for number in numbers}


def _previous_changed(activities):
    """The status moves (as rows to write) whose previous category is not the one their order gives."""
    moves = sorted((a for a in activities if a.kind == "status"), key=lambda a: (a.at, a.version or 0))
    changed, previous = [], None
    for move in moves:
        if move.previous != previous:
            changed.append({**move._asdict(), "previous": previous})
        previous = move.value
    return changed


def _backlog_place(fact, settled_category):
    """The key of ``backlog_totals`` a ticket counts under (None: under none, it never moved)."""
    if settled_category is None:
        return None
    return (settled_category, *("" if getattr(fact, name) is None else getattr(fact, name)
                                for name in ("team", "agent", "channel", "priority", "category", "language",
                                             "sla_policy")))


def _backlog_places(session, numbers):
    """Each ticket's place in the backlog totals as stored, its row locked (PostgreSQL) until the batch commits:
    a replica writing the same ticket waits, then reads what this batch left."""
    places = {}
    for chunk in _chunks(numbers):
        for row in session.execute(select(*(TicketFact.__table__.c[name] for name in FACT_READ),
                                          TicketFact.settled_category)
                                   .where(TicketFact.number.in_(chunk)).with_for_update()):
            places[row.number] = _backlog_place(row, row.settled_category)
    return places


def _move_backlog_totals(session, before, after):
    """Add the batch's moves to ``backlog_totals``: a ticket leaves its old place and counts in its new one."""
    changes = {}
    for number, place in after.items():
        if place != before.get(number):
            if before.get(number) is not None:
                changes[before[number]] = changes.get(before[number], 0) - 1
            if place is not None:
                changes[place] = changes.get(place, 0) + 1
    rows = [dict(zip(BACKLOG_KEY, key), tickets=n) for key, n in sorted(changes.items()) if n]
    if rows:
        _execute(session, _statements(session.get_bind().dialect.name)["backlog_totals"], rows)


def derive(fact, activities, settings):
    """Counters and durations of one ticket (its fact, its activity rows): the one definition of them."""
    counts = {"reopen": 0, "escalation": 0, "tier": 0, "reply": 0}
    for a in activities:
        if a.kind in counts:
            counts[a.kind] += 1
        if a.kind == "escalation" and a.value == "tier":
            counts["tier"] += 1
    derived = {"reopens": counts["reopen"], "escalations": counts["escalation"], "tier_moves": counts["tier"],
               "agent_replies": counts["reply"], "last_activity_at": max((a.at for a in activities), default=None),
               "first_response_seconds": None, "first_response_business_seconds": None,
               "resolution_seconds": None, "resolution_business_seconds": None}
    moves = sorted((a for a in activities if a.kind == "status"), key=lambda a: (a.at, a.version or 0))
    derived["settled_at"], derived["settled_category"] = (moves[-1].at, moves[-1].value) if moves else (None, None)
    solved_at = derived["solved_at"] = ((fact.resolved_at or fact.closed_at) if fact.status_category in SOLVED
                                        else None)
    created = fact.created_at
    if created is None or (fact.first_response_at is None and solved_at is None):
        return derived
    pauses = pending_pauses(activities)
    calendar = settings.calendar_of(fact.sla_policy)
    if fact.first_response_at is not None:
        derived["first_response_seconds"] = (fact.first_response_at - created).total_seconds()
        derived["first_response_business_seconds"] = _business_seconds(calendar, created, fact.first_response_at,
                                                                       pauses)
    if solved_at is not None:
        derived["resolution_seconds"] = (solved_at - created).total_seconds()
        derived["resolution_business_seconds"] = _business_seconds(calendar, created, solved_at, pauses)
    return derived


@lru_cache(maxsize=1 << 16)
def _business_seconds(calendar, start, end, pauses):
    # a ticket is refreshed by every batch that touches it, mostly with the same moments: computed once
    return business_seconds(calendar, start, end, pauses)


def pending_pauses(activities):
    """The intervals the ticket spent in the pending category (waiting on the customer): they never count
    as business time, as on the SLA clocks."""
    moves = [(a.at, a.value) for a in sorted((a for a in activities if a.kind == "status"),
                                            key=lambda a: (a.at, a.version or 0))]
    pauses = []
    for (at, category), following in zip(moves, moves[1:] + [(None, None)]):
        if category == "pending" and following[0] is not None:
            pauses.append((at, following[0]))
    return tuple(pauses)


# --- per event type ---------------------------------------------------------------------------------

def _ticket_view(batch, data, event):
    ticket = data.get("ticket") or {}
    if not ticket.get("number"):
        return
    batch.view(ticket)
    number, version = ticket["number"], int(ticket.get("version") or 0)
    kind = event["type"]
    if kind == "ticket_created":
        batch.activity(number, "status", stamp(ticket["created_at"]), ticket["created_at"],
                       value=batch.settings.category(ticket.get("status")), version=version)
    elif kind == "status_changed":
        before, after = (batch.settings.category(data.get("from_status")),
                         batch.settings.category(data.get("to_status")))
        at = ticket["updated_at"]
        batch.activity(number, "status", stamp(at), at, value=after, version=version)
        if before in SOLVED and after not in SOLVED:
            batch.activity(number, "reopen", stamp(at), at, version=version)
    elif kind == "message_added":
        message = data.get("message") or {}
        if message.get("visibility") == "public" and message.get("author_role") in STAFF_ROLES:
            batch.activity(number, "reply", message["id"], message["created_at"], actor=ticket.get("assignee"),
                           version=version)


def _escalated(batch, data, event):
    moved = "tier" if data.get("from_tier") != data.get("to_tier") else "team"
    key = data.get("sequence") if data.get("sequence") is not None else stamp(data["escalated_at"])
    batch.activity(data["ticket_number"], "escalation", key, data["escalated_at"], value=moved, actor=data.get("actor"))


def _sla_breached(batch, data, event):
    batch.breach(data["ticket_number"], data.get("metric"), data.get("policy"))


def _sla_warning(batch, data, event):
    batch.warn(data["ticket_number"])


def _assigned(batch, data, event):
    agent = data.get("agent") or {}
    if agent.get("assignee"):
        batch.agents[agent["assignee"]] = {"assignee": agent["assignee"], "name": agent.get("name"),
                                           "email": (agent.get("email") or "").lower() or None}


def _survey(kind, score_field):
    def handle(batch, data, event):
        row = {"survey_id": data["survey_id"], "kind": kind, "answer_id": data["answer_id"],
               "submitted_at": moment(data["submitted_at"]), "score": int(data[score_field]),
               "comment": data.get("comment"), "ticket": data.get("ticket"), "channel": data.get("channel"),
               "team": data.get("team"), "agent": data.get("assignee"), "language": data.get("language"),
               "contact_id": data.get("contact_id")}
        held = batch.surveys.get((data["survey_id"], kind))
        if held is None or (row["submitted_at"], row["answer_id"]) > (held["submitted_at"], held["answer_id"]):
            batch.surveys[(data["survey_id"], kind)] = row
    return handle


def _contact_erased(batch, data, event):
    """A contact's personal data was erased: their survey comments go; the scores stay (reports count them).
    Applied after this batch's other events (``ingest``), so an answer arriving in the same batch is erased too."""
    batch.erasures.append((data.get("contact_id"), list(data.get("ticket_numbers") or [])))


CHAT_FIELDS = ("started_at", "answered_at", "ended_at", "outcome", "agent", "ticket")


def _chat(batch, data, event):
    chat = data.get("chat") or {}
    if not chat.get("id"):
        return
    told = {"started_at": moment(chat.get("started_at")), "answered_at": moment(chat.get("answered_at")),
            "ended_at": moment(chat.get("ended_at")), "outcome": chat.get("outcome"), "agent": chat.get("agent"),
            "ticket": chat.get("ticket_number")}
    row = batch.chats.setdefault(chat["id"], {"id": chat["id"], **dict.fromkeys(CHAT_FIELDS)})
    for name, value in told.items():
        row[name] = row[name] or value


def _shown(batch, data, event):
    if data.get("context") != "portal":
        return
    batch.shown[data["suggestion_id"]] = batch.shown.get(data["suggestion_id"]) or moment(event.get("time"))


def _deflected(batch, data, event):
    key = data["suggestion_id"]
    row = batch.deflected.setdefault(key, {"suggestion_id": key, "shown_at": None, "deflected_at": None})
    row["shown_at"] = moment(data.get("shown_at")) or row["shown_at"]
    row["deflected_at"] = row["deflected_at"] or moment(data.get("deflected_at"))


_HANDLERS = {
    **{kind: _ticket_view for kind in TICKET_VIEW_EVENTS},
    "ticket_escalated": _escalated,
    "sla_breached": _sla_breached,
    "sla_warning": _sla_warning,
    "ticket_assigned": _assigned,
    "csat_submitted": _survey("csat", "rating"),
    "nps_submitted": _survey("nps", "score"),
    **{kind: _chat for kind in ("chat_started", "chat_answered", "chat_ended")},
    "suggestion_shown": _shown,
    "suggestion_deflected": _deflected,
    "contact_erased": _contact_erased,
}
SUBSCRIBED = tuple(sorted(_HANDLERS))
"""The event types analytics reads (a handler per type in the service); the others never reach it."""
