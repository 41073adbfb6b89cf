"""The measures: plain functions of frozen records, a period and an explicit ``now``. No database, no nameko.

A report counts *items*, each anchored at a moment (a ticket created, solved, first answered; a reply; a
survey answer; a chat started) and carrying the dimensions it is grouped and filtered by (team, agent,
channel, priority, category, language, policy). An item belongs to the period when ``start <= at < end``; a
time grouping (``day``, ``week``, ``month``) puts it in the bucket of its moment in the report's time zone.
Backlog is the exception: it is a state, counted at the end of each bucket (or ``now``, if sooner).

Statistics: the median is the middle value (the mean of the two middle ones for an even count); p90 is the
nearest-rank 90th percentile (the value at rank ceil(0.9 n)); means are arithmetic. Times are in seconds.
"""
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

DIMENSIONS = ("team", "agent", "channel", "priority", "category", "language", "policy")
TIME_GROUPS = ("day", "week", "month")
GROUPS = DIMENSIONS + TIME_GROUPS
STATUS_CATEGORIES = ("new", "open", "pending", "resolved", "closed")
MEASURES = ("volume", "backlog", "first_response", "resolution", "sla", "escalations", "one_touch", "agents",
            "csat", "nps", "chats", "deflection")
PORTAL_CHANNELS = ("web",)  # tickets opened from the portal, against which deflected visits are weighed
MAX_BUCKETS = 400  # a backlog by day over more than a year is a different question


@dataclass(frozen=True)
class Fact:
    number: str
    created_at: Optional[datetime]
    status_category: Optional[str]
    team: Optional[str] = None
    agent: Optional[str] = None
    channel: Optional[str] = None
    priority: Optional[str] = None
    category: Optional[str] = None
    language: Optional[str] = None
    policy: Optional[str] = None
    first_response_at: Optional[datetime] = None
    solved_at: Optional[datetime] = None
    first_response_seconds: Optional[float] = None
    first_response_business_seconds: Optional[float] = None
    resolution_seconds: Optional[float] = None
    resolution_business_seconds: Optional[float] = None
    sla_breached: bool = False
    reopens: int = 0
    escalations: int = 0
    tier_moves: int = 0
    agent_replies: int = 0


@dataclass(frozen=True)
class Activity:
    ticket: str
    kind: str  # status | reopen | reply | escalation
    at: datetime
    value: Optional[str] = None
    actor: Optional[str] = None
    version: int = 0


@dataclass(frozen=True)
class Answer:
    kind: str  # csat | nps
    submitted_at: datetime
    score: int
    comment: Optional[str] = None
    ticket: Optional[str] = None
    team: Optional[str] = None
    agent: Optional[str] = None
    channel: Optional[str] = None
    language: Optional[str] = None


@dataclass(frozen=True)
class Chat:
    id: str
    started_at: Optional[datetime]
    answered_at: Optional[datetime] = None
    outcome: Optional[str] = None
    agent: Optional[str] = None


@dataclass(frozen=True)
class Suggestion:
    shown_at: Optional[datetime]
    deflected_at: Optional[datetime] = None


@dataclass(frozen=True)
class Standing:
    """Tickets standing in a status category now, by the dimensions a backlog is grouped by (their values in
    ``group_by`` order)."""

    category: str
    dims: tuple
    tickets: int


@dataclass(frozen=True)
class Moved:
    """Status moves into ``value`` from ``previous`` (None: the ticket's first) by the dimensions a backlog is
    grouped by, and ``after``: how many of the backlog's bucket ends come at or before them."""

    after: int
    value: str
    previous: Optional[str]
    dims: tuple
    moves: int


@dataclass(frozen=True)
class Data:
    """Everything a report may read, already limited to what the viewer may see."""

    facts: tuple = ()
    activities: tuple = ()
    answers: tuple = ()
    chats: tuple = ()
    suggestions: tuple = ()
    standing: tuple = ()  # backlog: Standing
    moved: tuple = ()  # backlog: Moved
    # counted in SQL (``store``), keyed by the group_by values: name -> ((key, count), ...), and per measure
    # its rows (key, values...): per ticket for durations, per key for the others
    counted: dict = field(default_factory=dict)
    values: tuple = ()


@dataclass(frozen=True)
class Query:
    measure: str
    start: datetime
    end: datetime
    group_by: tuple = ()
    filters: tuple = ()  # ((dimension, value), ...)
    tz: str = "UTC"


# --- statistics -----------------------------------------------------------------------------------

def median(values):
    values = sorted(values)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def p90(values):
    values = sorted(values)
    return values[max(0, math.ceil(0.9 * len(values)) - 1)] if values else None


def mean(values):
    values = list(values)
    return math.fsum(values) / len(values) if values else None


def share(part, whole):
    return part / whole if whole else None


def durations(values, prefix):
    values = [v for v in values if v is not None]
    return {f"{prefix}_median": median(values), f"{prefix}_p90": p90(values), f"{prefix}_mean": mean(values)}


# --- grouping -------------------------------------------------------------------------------------

def bucket(moment, group, zone):
    """The start of ``moment``'s day, week (Monday) or month in ``zone``, as an ISO date."""
    local = moment.astimezone(zone).date()
    if group == "week":
        local = local - timedelta(days=local.weekday())
    elif group == "month":
        local = local.replace(day=1)
    return local.isoformat()


def dims_of_fact(fact):
    return {"team": fact.team, "agent": fact.agent, "channel": fact.channel, "priority": fact.priority,
            "category": fact.category, "language": fact.language, "policy": fact.policy}


def dims_of_answer(answer):
    return {"team": answer.team, "agent": answer.agent, "channel": answer.channel, "language": answer.language}


def _matches(dims, filters):
    return all(dims.get(name) == value for name, value in filters)


def _key(query, dims, at, zone):
    return tuple(bucket(at, g, zone) if g in TIME_GROUPS else dims.get(g) for g in query.group_by)


def _grouped(query, items, summarise):
    """``items``: (moment, dims, payload). Those in the period and matching the filters, grouped; each
    group summarised by ``summarise(payloads)`` (a dict)."""
    zone = ZoneInfo(query.tz)
    groups = {}
    for at, dims, payload in items:
        if at is None or not (query.start <= at < query.end) or not _matches(dims, query.filters):
            continue
        groups.setdefault(_key(query, dims, at, zone), []).append(payload)
    return _rows(query, {key: summarise(payloads) for key, payloads in groups.items()})


def _rows(query, summaries):
    rows = [{**dict(zip(query.group_by, key)), **values} for key, values in summaries.items()]
    return sorted(rows, key=lambda row: tuple("" if row.get(g) is None else str(row.get(g)) for g in query.group_by))


# --- the measures ---------------------------------------------------------------------------------

def grouped_as(query):
    """The query as its measure groups it: SLA compliance per policy unless grouped otherwise."""
    if query.measure == "sla" and not query.group_by:
        return Query(query.measure, query.start, query.end, ("policy",), query.filters, query.tz)
    return query


def _counted(query, counted, names):
    """``counted``: name -> ((key, count), ...) counted in SQL; one row per key with each name's count."""
    summaries = {}
    for name in names:
        for key, n in counted.get(name, ()):
            summaries.setdefault(key, dict.fromkeys(names, 0))[name] += n
    return _rows(query, summaries)


def volume(query, data, now):
    """Tickets created, solved and reopened in the period."""
    return _counted(query, data.counted, ("created", "solved", "reopened"))


def _durations(query, values):
    """``values``: (key, calendar seconds, business seconds) per ticket."""
    by_key = {}
    for key, calendar, business in values:
        pair = by_key.setdefault(key, ([], []))
        pair[0].append(calendar)
        pair[1].append(business)
    return _rows(query, {key: {"count": len(calendar), **durations(calendar, "calendar"),
                               **durations(business, "business")}
                         for key, (calendar, business) in by_key.items()})


def first_response(query, data, now):
    """Of the tickets first answered in the period: the time to it (median, p90, mean)."""
    return _durations(query, data.values)


def resolution(query, data, now):
    """Of the tickets solved in the period: the time to it (median, p90, mean)."""
    return _durations(query, data.values)


def sla(query, data, now):
    """Of the tickets solved in the period that an SLA policy covered, the share kept within every target."""
    return _rows(grouped_as(query), {key: {"count": count, "breached": breached,
                                           "compliance": share(count - breached, count)}
                                     for key, count, breached in data.values})


def escalations(query, data, now):
    """Of the tickets created in the period, the share escalated at least once, and the tier moves."""
    return _rows(query, {key: {"count": count, "escalated": escalated, "escalation_rate": share(escalated, count),
                               "escalations": moves, "tier_moves": tier_moves}
                         for key, count, escalated, moves, tier_moves in data.values})


def one_touch(query, data, now):
    """Of the tickets solved in the period, the share solved with one public reply of an agent, never reopened."""
    return _rows(query, {key: {"count": count, "one_touch": touched, "one_touch_rate": share(touched, count)}
                         for key, count, touched in data.values})


def agents(query, data, now):
    """Per agent: tickets solved (handled), public replies, first response and resolution medians, CSAT."""
    if "agent" not in query.group_by:
        query = Query(query.measure, query.start, query.end, ("agent",) + tuple(query.group_by), query.filters,
                      query.tz)
    facts = {f.number: f for f in data.facts}
    items = [(f.solved_at, dims_of_fact(f), ("handled", f)) for f in data.facts]
    items += [(a.at, {**dims_of_fact(facts[a.ticket]), "agent": a.actor}, ("reply", None)) for a in data.activities
              if a.kind == "reply" and a.ticket in facts]
    items += [(a.submitted_at, dims_of_answer(a), ("csat", a)) for a in data.answers if a.kind == "csat"]

    def summarise(payloads):
        handled = [f for kind, f in payloads if kind == "handled"]
        ratings = [a.score for kind, a in payloads if kind == "csat"]
        return {"handled": len(handled), "replies": sum(1 for kind, _ in payloads if kind == "reply"),
                "first_response_median": median([f.first_response_seconds for f in handled
                                                 if f.first_response_seconds is not None]),
                "resolution_median": median([f.resolution_seconds for f in handled]),
                "csat_count": len(ratings), "csat": share(sum(1 for r in ratings if r >= 4), len(ratings))}
    return _grouped(query, items, summarise)


def csat(query, data, now):
    """Share of ratings 4-5, their count and mean, and the latest comments (up to 20)."""
    items = [(a.submitted_at, dims_of_answer(a), a) for a in data.answers if a.kind == "csat"]
    return _grouped(query, items, lambda answers: {
        "count": len(answers), "satisfied": sum(1 for a in answers if a.score >= 4),
        "csat": share(sum(1 for a in answers if a.score >= 4), len(answers)),
        "mean": mean(a.score for a in answers),
        "comments": [{"ticket": a.ticket, "rating": a.score, "comment": a.comment,
                      "submitted_at": a.submitted_at.isoformat()}
                     for a in sorted(answers, key=lambda a: (a.submitted_at, a.ticket or ""), reverse=True)
                     if a.comment][:20]})


def nps(query, data, now):
    """Promoters (9-10) minus detractors (0-6), as a percentage of the answers."""
    items = [(a.submitted_at, dims_of_answer(a), a.score) for a in data.answers if a.kind == "nps"]

    def summarise(scores):
        promoters, detractors = sum(1 for s in scores if s >= 9), sum(1 for s in scores if s <= 6)
        return {"count": len(scores), "promoters": promoters, "passives": len(scores) - promoters - detractors,
                "detractors": detractors, "nps": 100 * (promoters - detractors) / len(scores)}
    return _grouped(query, items, summarise)


def chats(query, data, now):
    """Chats started in the period: how many, how many ended unanswered, and the wait for an agent."""
    items = [(c.started_at, {"agent": c.agent}, c) for c in data.chats]
    return _grouped(query, items, lambda cs: {
        "count": len(cs), "unanswered": sum(1 for c in cs if c.outcome == "unanswered"),
        "unanswered_rate": share(sum(1 for c in cs if c.outcome == "unanswered"), len(cs)),
        **durations([(c.answered_at - c.started_at).total_seconds() for c in cs if c.answered_at], "wait")})


def deflection(query, data, now):
    """Portal visits the suggestions answered, against those and the tickets opened from the portal."""
    zone = ZoneInfo(query.tz)
    deflected = {}
    for s in data.suggestions:
        at = s.deflected_at
        if at is not None and query.start <= at < query.end and _matches({}, query.filters):
            key = _key(query, {}, at, zone)
            deflected[key] = deflected.get(key, 0) + 1
    summaries = {}
    for key, n in deflected.items():
        summaries[key] = {"deflected": n, "portal_tickets": 0}
    for key, n in data.counted.get("portal_tickets", ()):
        summaries.setdefault(key, {"deflected": 0, "portal_tickets": 0})["portal_tickets"] += n
    return _rows(query, {key: {**counts, "deflection_rate": share(counts["deflected"],
                                                                  counts["deflected"] + counts["portal_tickets"])}
                         for key, counts in summaries.items()})


def backlog_query(query):
    """A backlog is counted at the end of each bucket of a time group: by day unless grouped otherwise."""
    if any(g in TIME_GROUPS for g in query.group_by):
        return query
    return Query(query.measure, query.start, query.end, ("day",) + tuple(query.group_by), query.filters, query.tz)


def backlog_ends(query, now):
    """(label, moment) of each bucket end of a backlog ``query`` (:func:`backlog_query`), ``now`` at most."""
    time_group = next(g for g in query.group_by if g in TIME_GROUPS)
    return bucket_ends(query.start, min(query.end, now), time_group, ZoneInfo(query.tz))


def backlog(query, data, now):
    """Tickets by status category at the end of each bucket (``day`` unless grouped otherwise), or at ``now``
    for the bucket still running.

    Counted backwards from the tickets standing in each category now (``data.standing``): at a bucket's end
    ``T`` a ticket stands where it stood before its first move at or after ``T``, so each of those moves
    (``data.moved``) is undone, out of the category it entered and back into the one it left. The records come
    already filtered and grouped by the query's dimensions (in ``group_by`` order)."""
    query = backlog_query(query)
    ends = backlog_ends(query, now)
    dimensions = [g for g in query.group_by if g not in TIME_GROUPS]
    standing = {}
    for s in data.standing:
        standing[(s.dims, s.category)] = standing.get((s.dims, s.category), 0) + s.tickets
    undo = [{} for _ in range(len(ends) + 1)]  # by how many bucket ends come at or before the move
    for m in data.moved:
        changes = undo[m.after]
        changes[(m.dims, m.value)] = changes.get((m.dims, m.value), 0) - m.moves
        if m.previous is not None:
            changes[(m.dims, m.previous)] = changes.get((m.dims, m.previous), 0) + m.moves
    summaries = {}
    for index in reversed(range(len(ends))):
        for key, change in undo[index + 1].items():  # the moves at or after this bucket's end
            standing[key] = standing.get(key, 0) + change
        label = ends[index][0]
        for (dims, category), tickets in standing.items():
            if tickets:
                named = dict(zip(dimensions, dims))
                key = tuple(label if g in TIME_GROUPS else named[g] for g in query.group_by)
                counts = summaries.setdefault(key, dict.fromkeys(STATUS_CATEGORIES, 0))
                counts[category] = counts.get(category, 0) + tickets
    return _rows(query, summaries)


def bucket_ends(start, end, group, zone):
    """(label, end moment) of each day, week or month from ``start`` to ``end``; the last ends at ``end``."""
    local = datetime.fromisoformat(bucket(start, group, zone)).replace(tzinfo=zone)
    ends = []
    while local < end and len(ends) <= MAX_BUCKETS:
        if group == "day":
            following = (local + timedelta(days=1)).replace(tzinfo=zone)
        elif group == "week":
            following = (local + timedelta(days=7)).replace(tzinfo=zone)
        else:
            following = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
        ends.append((local.date().isoformat(), min(_wall(following, zone), end)))
        local = _wall(following, zone)
    return ends


def _wall(moment, zone):
    """Midnight of a local date as an aware moment (days when clocks change are 23 or 25 hours long)."""
    return datetime(moment.year, moment.month, moment.day, tzinfo=zone)


REPORTS = {"volume": volume, "backlog": backlog, "first_response": first_response, "resolution": resolution,
           "sla": sla, "escalations": escalations, "one_touch": one_touch, "agents": agents, "csat": csat, "nps": nps,
           "chats": chats, "deflection": deflection}


def report(query, data, now):
    """The rows of ``query``'s measure over ``data``."""
    return REPORTS[query.measure](query, data, now)
