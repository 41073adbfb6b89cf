"""Proactive problem detection against the store: new tickets recorded, their wording analysed, surges found and
announced (``spike_detected`` through the outbox), similar open tickets grouped. Plain functions of a session and
an explicit ``now``; the rules themselves are in :mod:`surges`.

A ticket's team and category are taken from the read model's ``ticket_facts`` when it has them (routing sets the
team after the ticket was created), else from the ticket as created.
"""
from datetime import datetime, timedelta

from sqlalchemy import func, select

from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage

from . import surges
from .facts import _insert
from .models import TicketFact
from .surge_models import TEXT_CHARS, Outbox, Spike, SurgeTicket

OPEN_DAYS = 7  # open tickets created this recently are grouped by wording
MAX_GROUPED = 5000  # the newest open tickets grouped at most (a bound on one grouping's work)
ANALYSE_BATCH = 500
CLOSED = ("resolved", "closed")


def _moment(value):
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def record_arrivals(session, events):
    """Record the new tickets of ``ticket_created`` events once each. Idempotent by the ticket's number (the
    row's key), which is stricter than by event id: a repeated event, or the same ticket told under another id,
    is one row; two replicas inserting it at once collide on the key and the loser's rerun finds it. (No
    ``processed_events`` rows: that table counts the read model's deliveries.) Answers how many were new."""
    return record_tickets(session, [(e.get("data") or {}).get("ticket") for e in events
                                    if e.get("type") == "ticket_created"])


def record_tickets(session, tickets):
    """Record ticket views (from events, or from the tickets service's export during ``analytics-rebuild``)
    not recorded yet; answers how many were new. One ``INSERT ... ON CONFLICT DO NOTHING``: the live handler
    and a rebuild running meanwhile insert the same tickets, and the second writer of a row just skips it."""
    views = {}
    for ticket in tickets:
        if isinstance(ticket, dict) and ticket.get("number") and ticket.get("created_at"):
            views.setdefault(ticket["number"], ticket)
    if not views:
        return 0
    rows = []
    for number, ticket in sorted(views.items()):
        subject = (ticket.get("subject") or "")[:300]
        rows.append({"number": number, "created_at": _moment(ticket["created_at"]), "category": ticket.get("category"),
                     "team": ticket.get("team"), "channel": ticket.get("channel"), "language": ticket.get("language"),
                     "subject": subject, "text": f"{subject}\n{ticket.get('description') or ''}"[:TEXT_CHARS]})
    table = SurgeTicket.__table__
    statement = _insert(session)(table).on_conflict_do_nothing(index_elements=["number"]).returning(table.c.number)
    return len(session.execute(statement, rows).all())


def unanalysed(session, limit=ANALYSE_BATCH):
    """Tickets whose wording has no terms yet: ``[{"number", "language", "text"}]``, oldest first."""
    rows = session.execute(select(SurgeTicket.number, SurgeTicket.language, SurgeTicket.text)
                           .where(SurgeTicket.terms.is_(None)).order_by(SurgeTicket.created_at).limit(limit))
    return [{"number": number, "language": language, "text": text} for number, language, text in rows]


def store_terms(session, terms_by_number):
    for number, terms in terms_by_number.items():
        row = session.get(SurgeTicket, number)
        if row is not None:
            row.terms = " ".join(sorted(set(terms)))


def _arrivals(session, start, end):
    query = (select(SurgeTicket, TicketFact.team, TicketFact.category, TicketFact.status_category)
             .join(TicketFact, TicketFact.number == SurgeTicket.number, isouter=True)
             .where(SurgeTicket.created_at >= start, SurgeTicket.created_at < end))
    for row, team, category, status_category in session.execute(query):
        yield (surges.Arrival(row.number, row.created_at, category or row.category, team or row.team, row.channel,
                              frozenset((row.terms or "").split())), row, status_category)


def spike_id(surge, now):
    bucket = now - timedelta(seconds=now.timestamp() % surges.WINDOW.total_seconds())
    return f"{surge.dimension}:{surge.value}:{bucket.isoformat()}"[:200]


def detect_and_announce(session, now):
    """Find the surges at ``now`` and announce each one not announced within the last window. Answers the
    surges announced (their ``spike_detected`` data)."""
    span = timedelta(weeks=surges.BASELINE_WEEKS) + 2 * surges.WINDOW
    rows = list(_arrivals(session, now - span, now))
    first = session.scalar(select(func.min(SurgeTicket.created_at)))
    arrivals = surges.Arrivals((arrival for arrival, _, _ in rows), known_since=first)
    created = {arrival.number: arrival.created_at for arrival, _, _ in rows}
    announced = []
    for surge in surges.detect(arrivals, now):
        recent = session.scalar(select(func.count()).select_from(Spike).where(
            Spike.dimension == surge.dimension, Spike.value == surge.value[:200],
            Spike.window_end > now - surges.WINDOW))
        if recent:
            continue  # the same surge still going on: announced once a window
        data = {"spike_id": spike_id(surge, now), "dimension": surge.dimension, "value": surge.value[:200],
                "window_start": surge.window_start, "window_end": surge.window_end, "count": surge.count,
                "baseline": round(surge.baseline, 3), "detected_at": now,
                "tickets": [{"number": n, "created_at": created[n]} for n in surge.tickets]}
        event = new_event("spike_detected", data, subject=surge.tickets[0] if surge.tickets else None)
        session.add(Spike(spike_id=data["spike_id"], dimension=surge.dimension, value=data["value"],
                          window_start=surge.window_start, window_end=surge.window_end, count=surge.count,
                          baseline=surge.baseline, tickets=list(surge.tickets), detected_at=now))
        session.flush()  # a replica that announced the same surge first makes this fail: the caller retries
        stage(session, Outbox, event)
        announced.append(event["data"])
    return announced


def active_surges(session, now):
    """Surges announced within the last window, by dimension (the ``helpdesk_surges_active`` gauge)."""
    return dict(session.execute(select(Spike.dimension, func.count()).where(Spike.detected_at > now - surges.WINDOW)
                                .group_by(Spike.dimension)).all())


def recent_spikes(session, scope, now, hours=24):
    """The surges announced in the last ``hours``, newest first, each with the tickets ``scope`` may see (a
    surge none of whose tickets it may see is left out)."""
    spikes = list(session.scalars(select(Spike).where(Spike.detected_at >= now - timedelta(hours=hours))
                                  .order_by(Spike.detected_at.desc(), Spike.spike_id)))
    visible = _visible_numbers(session, scope, {n for spike in spikes for n in spike.tickets})
    answer = []
    for spike in spikes:
        tickets = [n for n in spike.tickets if n in visible]
        if tickets:
            answer.append({"spike_id": spike.spike_id, "dimension": spike.dimension, "value": spike.value,
                           "window_start": spike.window_start.isoformat(), "window_end": spike.window_end.isoformat(),
                           "count": spike.count, "baseline": spike.baseline, "tickets": tickets,
                           "detected_at": spike.detected_at.isoformat()})
    return answer


def _visible_numbers(session, scope, numbers):
    if scope.everything or not numbers:
        return set(numbers)
    rows = session.execute(select(TicketFact.number, TicketFact.team, TicketFact.agent)
                           .where(TicketFact.number.in_(list(numbers))))
    return {number for number, team, agent in rows if scope.allows(team, agent)}


def similar_groups(session, scope, now, threshold=surges.SIMILARITY):
    """Open tickets of the last ``OPEN_DAYS`` worded alike, as groups an agent can turn into a problem: each
    ``{"terms", "tickets": [{"number", "subject", "created_at"}]}``, the biggest first. Only tickets ``scope`` may
    see are grouped."""
    query = (select(SurgeTicket, TicketFact.team, TicketFact.agent, TicketFact.status_category)
             .join(TicketFact, TicketFact.number == SurgeTicket.number, isouter=True)
             .where(SurgeTicket.created_at >= now - timedelta(days=OPEN_DAYS), SurgeTicket.terms.is_not(None))
             .order_by(SurgeTicket.created_at.desc()).limit(MAX_GROUPED))
    tickets = {}
    for row, team, agent, status_category in session.execute(query):
        if status_category not in CLOSED and scope.allows(team or row.team, agent):
            tickets[row.number] = row
    groups = surges.group_similar([(n, row.terms.split()) for n, row in tickets.items()], threshold)
    return [{"terms": sorted(surges.signature([frozenset(tickets[n].terms.split()) for n in group])),
             "tickets": [{"number": n, "subject": tickets[n].subject,
                          "created_at": tickets[n].created_at.isoformat()} for n in group]} for group in groups]
