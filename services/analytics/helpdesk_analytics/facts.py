"""Building the read model from events: plain functions of a SQLAlchemy session, no nameko in here.

:func:`ingest` takes a batch of event envelopes of any types, in any order, any number of times:

- an event takes effect once (``processed_events``, in the caller's transaction);
- a ticket's snapshot fields (status, team, agent, priority, ...) come from the ticket view with the highest
  ``version`` seen, so an older view arriving late changes nothing;
- dated moments (status changes, reopens, agents' replies, escalations) are rows keyed by what names them in
  the ticket's history, so a moment told twice (a repeat under a new id, the rebuild's export) is one row;
- counters and durations are recomputed from those rows and the snapshot (:func:`refresh`), never incremented;
- an event type analytics does not read is ignored.
"""
from datetime import datetime, timezone

from sqlalchemy import or_, select, update

from helpdesk_common.business_hours import business_seconds
from helpdesk_common.inbox import first_deliveries

from .models import AgentName, ChatFact, Deflection, ProcessedEvent, SurveyAnswer, TicketActivity, TicketFact
from .settings import SOLVED

HANDLER = "analytics.ingest"
TICKET_VIEW_EVENTS = ("ticket_created", "ticket_updated", "status_changed", "message_added")
STAFF_ROLES = ("agent", "admin")
SNAPSHOT = ("status", "team", "channel", "priority", "category", "language", "tier")


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
    batch = _Batch(session, settings)
    batch.preload(_ticket_number(e) for e in todo)
    with session.no_autoflush:  # one flush at the end of the batch, not one per event
        for event in todo:
            handle = _HANDLERS.get(event.get("type"))
            if handle is not None:  # a type analytics does not read (or a newer platform's): ignored
                handle(batch, event.get("data") or {}, event)
    batch.flush()
    for contact_id, numbers in batch.erasures:
        erase_comments(session, contact_id, numbers)
    return len(todo)


def erase_comments(session, contact_id, numbers):
    found = SurveyAnswer.ticket.in_(numbers)
    if contact_id:
        found = or_(found, SurveyAnswer.contact_id == contact_id)
    session.execute(update(SurveyAnswer).where(found).values(comment=None, contact_id=None)
                    .execution_options(synchronize_session=False))


def _ticket_number(event):
    data = event.get("data") or {}
    ticket = data.get("ticket")
    return ticket.get("number") if isinstance(ticket, dict) else data.get("ticket_number")


def ingest_export(session, items, settings):
    """Apply a page of the tickets service's history export (``export_history``) to the read model.

    The same moments the live events tell, under the same keys (a status change by its time, a reply by its
    message id) and the ticket's snapshot by version: run while events keep arriving, each moment is still
    one row. What only other services' events tell (escalations, surveys, chats) is kept as it is."""
    batch = _Batch(session, settings)
    batch.preload(item["ticket"]["number"] for item in items)
    for item in items:
        ticket = item["ticket"]
        number, version = ticket["number"], int(ticket.get("version") or 0)
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
    batch.flush()
    return len(items)


class _Batch:
    """What one batch of events changes: facts by ticket, new activities, survey answers, chats."""

    def __init__(self, session, settings):
        self.session, self.settings = session, settings
        self.facts, self.activities, self.touched, self.rows = {}, {}, set(), {}
        self.looked_up = set()  # tickets read already: absent from self.facts means not in the database
        self.erasures = []  # (contact id, ticket numbers) of contacts erased in this batch

    def preload(self, numbers):
        """Read the facts of the batch's tickets in one query."""
        wanted = sorted({n for n in numbers if n} - set(self.facts))
        self.looked_up.update(wanted)
        for start in range(0, len(wanted), 500):
            for fact in self.session.scalars(select(TicketFact).where(TicketFact.number.in_(wanted[start:start + 500]))):
                self.facts[fact.number] = fact

    def row(self, model, key, **identity):
        """The row of ``model`` with primary key ``key``, read once per batch, or a new one (added)."""
        if (model, key) not in self.rows:
            found = self.session.get(model, key)
            if found is None:
                found = model(**identity)
                self.session.add(found)
            self.rows[(model, key)] = found
        return self.rows[(model, key)]

    def fact(self, number):
        if number not in self.facts:
            fact = None if number in self.looked_up else self.session.get(TicketFact, number)
            if fact is None:
                fact = TicketFact(number=number, version=0, tier=1, reopens=0, escalations=0, tier_moves=0,
                                  agent_replies=0, sla_first_response_breached=False, sla_resolution_breached=False,
                                  sla_warned=False)
                self.session.add(fact)
            self.facts[number] = fact
        self.touched.add(number)
        return self.facts[number]

    def view(self, ticket):
        """Take the ticket view's fields if it is the newest version seen."""
        fact = self.fact(ticket["number"])
        version = int(ticket.get("version") or 0)
        if version < (fact.version or 0):
            return fact
        fact.version = version
        for name in SNAPSHOT:
            setattr(fact, name, ticket.get(name))
        fact.tier = ticket.get("tier") or 1
        fact.agent = ticket.get("assignee")
        fact.status_category = self.settings.category(ticket.get("status"))
        fact.created_at = moment(ticket.get("created_at"))
        fact.first_response_at = moment(ticket.get("first_response_at"))
        fact.resolved_at = moment(ticket.get("resolved_at"))
        fact.closed_at = moment(ticket.get("closed_at"))
        sla = ticket.get("sla") or {}
        fact.sla_policy = sla.get("policy")
        # a breach never heals: sla_breached may have told it before this view did
        fact.sla_first_response_breached = bool(fact.sla_first_response_breached or sla.get("first_response_breached"))
        fact.sla_resolution_breached = bool(fact.sla_resolution_breached or sla.get("resolution_breached"))
        return fact

    def activity(self, ticket, kind, key, at, value=None, actor=None, version=0):
        self.fact(ticket)
        self.activities.setdefault((ticket, kind, str(key)), dict(
            ticket=ticket, kind=kind, key=str(key), at=moment(at), value=value, actor=actor, version=version))

    def flush(self):
        if self.activities:
            tickets = sorted({key[0] for key in self.activities})
            known = set(self.session.execute(select(TicketActivity.ticket, TicketActivity.kind, TicketActivity.key)
                                             .where(TicketActivity.ticket.in_(tickets))).tuples())
            self.session.add_all(TicketActivity(**row) for key, row in self.activities.items() if key not in known)
        self.session.flush()
        if self.touched:
            refresh(self.session, [self.facts[n] for n in sorted(self.touched)], self.settings)


def refresh(session, facts, settings):
    """Recompute each fact's counters and durations from its activities and snapshot."""
    by_ticket = {fact.number: [] for fact in facts}
    rows = session.execute(select(TicketActivity).where(TicketActivity.ticket.in_(list(by_ticket)))).scalars()
    for row in rows:
        by_ticket[row.ticket].append(row)
    for fact in facts:
        derive(fact, by_ticket[fact.number], settings)


def derive(fact, activities, settings):
    """Counters and durations of one ticket (its fact, its activity rows): the one definition of them."""
    fact.reopens = sum(1 for a in activities if a.kind == "reopen")
    fact.escalations = sum(1 for a in activities if a.kind == "escalation")
    fact.tier_moves = sum(1 for a in activities if a.kind == "escalation" and a.value == "tier")
    fact.agent_replies = sum(1 for a in activities if a.kind == "reply")
    fact.last_activity_at = max((a.at for a in activities), default=None)
    solved = fact.status_category in SOLVED
    fact.solved_at = (fact.resolved_at or fact.closed_at) if solved else None
    created = fact.created_at
    pauses = pending_pauses(activities)
    calendar = settings.calendar_of(fact.sla_policy)
    fact.first_response_seconds = fact.first_response_business_seconds = None
    fact.resolution_seconds = fact.resolution_business_seconds = None
    if created is not None and fact.first_response_at is not None:
        fact.first_response_seconds = (fact.first_response_at - created).total_seconds()
        fact.first_response_business_seconds = business_seconds(calendar, created, fact.first_response_at, pauses)
    if created is not None and fact.solved_at is not None:
        fact.resolution_seconds = (fact.solved_at - created).total_seconds()
        fact.resolution_business_seconds = business_seconds(calendar, created, fact.solved_at, pauses)


def pending_pauses(activities):
    """The intervals the ticket spent in the pending category (waiting on the customer): they never count
    as business time, as on the SLA clocks."""
    moves = [(a.at, a.value) for a in sorted((a for a in activities if a.kind == "status"),
                                            key=lambda a: (a.at, a.version or 0))]
    pauses = []
    for (at, category), following in zip(moves, moves[1:] + [(None, None)]):
        if category == "pending" and following[0] is not None:
            pauses.append((at, following[0]))
    return pauses


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
    fact = batch.fact(data["ticket_number"])
    if data.get("metric") == "first_response":
        fact.sla_first_response_breached = True
    else:
        fact.sla_resolution_breached = True
    if data.get("policy") and not fact.sla_policy:
        fact.sla_policy = data["policy"]


def _sla_warning(batch, data, event):
    batch.fact(data["ticket_number"]).sla_warned = True


def _assigned(batch, data, event):
    agent = data.get("agent") or {}
    if agent.get("assignee"):
        row = batch.row(AgentName, agent["assignee"], assignee=agent["assignee"])
        row.name, row.email = agent.get("name"), (agent.get("email") or "").lower() or None


def _survey(kind, score_field):
    def handle(batch, data, event):
        submitted = moment(data["submitted_at"])
        row = batch.row(SurveyAnswer, (data["survey_id"], kind), survey_id=data["survey_id"], kind=kind)
        if row.answer_id is not None and (row.submitted_at, row.answer_id) >= (submitted, data["answer_id"]):
            return  # the answer kept is as new or newer: this one arrived late
        row.answer_id, row.submitted_at, row.score = data["answer_id"], submitted, int(data[score_field])
        row.comment, row.ticket, row.channel = data.get("comment"), data.get("ticket"), data.get("channel")
        row.team, row.agent, row.language = data.get("team"), data.get("assignee"), data.get("language")
        row.contact_id = data.get("contact_id")
    return handle


def _contact_erased(batch, data, event):
    """A contact's personal data was erased: their survey comments go; the scores stay (reports count them).
    Applied after this batch's other events (``ingest``), so an answer arriving in the same batch is erased too."""
    batch.erasures.append((data.get("contact_id"), list(data.get("ticket_numbers") or [])))


def _chat(batch, data, event):
    chat = data.get("chat") or {}
    if not chat.get("id"):
        return
    row = batch.row(ChatFact, chat["id"], id=chat["id"])
    # each field, once known, stays: events of one chat only ever add to what is known
    row.started_at = row.started_at or moment(chat.get("started_at"))
    row.answered_at = row.answered_at or moment(chat.get("answered_at"))
    row.ended_at = row.ended_at or moment(chat.get("ended_at"))
    row.outcome = row.outcome or chat.get("outcome")
    row.agent = row.agent or chat.get("agent")
    row.ticket = row.ticket or chat.get("ticket_number")


def _shown(batch, data, event):
    if data.get("context") != "portal":
        return
    row = batch.row(Deflection, data["suggestion_id"], suggestion_id=data["suggestion_id"])
    row.shown_at = row.shown_at or moment(event.get("time"))


def _deflected(batch, data, event):
    row = batch.row(Deflection, data["suggestion_id"], suggestion_id=data["suggestion_id"])
    row.shown_at = moment(data.get("shown_at")) or row.shown_at
    row.deflected_at = row.deflected_at or moment(data.get("deflected_at"))


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
