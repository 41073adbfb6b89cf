"""Reading the read model for a report: the rows a period can touch, as frozen records (``measures``), limited
to what the viewer may see. Plain functions of a SQLAlchemy session."""
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, or_, select

from . import measures
from .models import AgentName, BacklogTotal, ChatFact, Deflection, SurveyAnswer, TicketActivity, TicketFact

STAFF_WIDE = ("admin", "system")  # and supervisors: see Scope


class Scope:
    """What a viewer may count: everything (admins, supervisors), or the tickets of their teams and their
    own (an agent: ``assignees``, how tickets name them, found by their email)."""

    def __init__(self, everything, teams=(), assignees=()):
        self.everything, self.teams, self.assignees = everything, frozenset(teams), frozenset(assignees)

    def allows(self, team, agent):
        return self.everything or team in self.teams or agent in self.assignees


def scope_of(session, viewer):
    if viewer.get("role") in STAFF_WIDE or "supervisor" in (viewer.get("roles") or ()):
        return Scope(True)
    email = (viewer.get("email") or "").lower()
    assignees = set(session.scalars(select(AgentName.assignee).where(AgentName.email == email))) if email else set()
    return Scope(False, viewer.get("teams") or (), assignees)


def _fact(row):
    return measures.Fact(
        number=row.number, created_at=row.created_at, status_category=row.status_category, team=row.team,
        agent=row.agent, channel=row.channel, priority=row.priority, category=row.category, language=row.language,
        policy=row.sla_policy, first_response_at=row.first_response_at, solved_at=row.solved_at,
        first_response_seconds=row.first_response_seconds,
        first_response_business_seconds=row.first_response_business_seconds,
        resolution_seconds=row.resolution_seconds, resolution_business_seconds=row.resolution_business_seconds,
        sla_breached=bool(row.sla_first_response_breached or row.sla_resolution_breached), reopens=row.reopens,
        escalations=row.escalations, tier_moves=row.tier_moves, agent_replies=row.agent_replies)


COLUMN_OF = {"policy": "sla_policy"}  # a dimension's column in ticket_facts, where its name differs


def _column(table, dimension):
    return table.c[COLUMN_OF.get(dimension, dimension)] if table is TicketFact.__table__ else table.c[dimension]


def _narrowed(table, query, scope, filters=True):
    """SQL conditions on ``table`` (ticket facts or backlog totals) for the query's filters and the scope."""
    empty = "" if table is BacklogTotal.__table__ else None  # how the table writes no value
    conditions = [_column(table, name) == value for name, value in query.filters] if filters else []
    if not scope.everything:
        conditions.append(or_(_column(table, "team").in_(sorted(scope.teams) or [empty]),
                              _column(table, "agent").in_(sorted(scope.assignees) or [empty])))
    return conditions


def load(session, query, scope, now):
    """The records ``query``'s measure needs (``measures.Query``), as ``scope`` may see them."""
    measure, start, end = query.measure, query.start, query.end
    if measure == "backlog":
        return load_backlog(session, query, scope, now)
    if measure in COUNTED:
        return COUNTED[measure](session, measures.grouped_as(query), scope)
    facts, activities, answers, chats = (), (), (), ()
    if measure == "agents":
        facts, activities = _agents_facts(session, query, scope)
    if measure in ("csat", "nps", "agents"):
        kind = "nps" if measure == "nps" else "csat"
        rows = session.execute(select(*SurveyAnswer.__table__.c).where(
            SurveyAnswer.kind == kind, SurveyAnswer.submitted_at >= start, SurveyAnswer.submitted_at < end))
        answers = tuple(measures.Answer(kind=r.kind, submitted_at=r.submitted_at, score=r.score, comment=r.comment,
                                        ticket=r.ticket, team=r.team, agent=r.agent, channel=r.channel,
                                        language=r.language)
                        for r in rows if scope.allows(r.team, r.agent))
    if measure == "chats":
        rows = session.execute(select(*ChatFact.__table__.c).where(ChatFact.started_at >= start,
                                                                   ChatFact.started_at < end))
        chats = tuple(measures.Chat(id=r.id, started_at=r.started_at, answered_at=r.answered_at, outcome=r.outcome,
                                    agent=r.agent) for r in rows if scope.allows(None, r.agent))
    return measures.Data(facts=facts, activities=activities, answers=answers, chats=chats)


def _agents_facts(session, query, scope):
    """The tickets solved in the period and those an agent replied on in it, and those replies."""
    table, start, end = TicketFact.__table__, query.start, query.end
    replied = select(TicketActivity.ticket).where(TicketActivity.kind == "reply", TicketActivity.at >= start,
                                                  TicketActivity.at < end)
    # plain rows, not ORM objects: a report reads many and changes none
    facts = tuple(_fact(row) for row in session.execute(select(*table.c).where(
        or_(and_(table.c.solved_at >= start, table.c.solved_at < end), table.c.number.in_(replied)),
        # the filters apply to each counted item (a reply counts for who wrote it): measures.agents applies them
        *_narrowed(table, query, scope, filters=False))))
    numbers = {f.number for f in facts}
    rows = session.execute(select(*TicketActivity.__table__.c).where(
        TicketActivity.kind == "reply", TicketActivity.at >= start, TicketActivity.at < end))
    activities = tuple(measures.Activity(ticket=r.ticket, kind=r.kind, at=r.at, value=r.value, actor=r.actor,
                                         version=r.version) for r in rows if r.ticket in numbers)
    return facts, activities


# --- ticket measures counted in SQL -------------------------------------------------------------------
# Each reads the tickets whose moment (created, first answered, solved) falls in the period, through that
# moment's index, and counts them by the query's groups in the database: a time group by the index of its
# bucket (the buckets' ends computed here in the report's time zone, so SQL needs no time zone support), a
# dimension by its column. Only the counts (or, for durations, one row of numbers per ticket) reach Python.

def _keys(query, anchor, facts):
    """The SQL expressions of the query's groups for items anchored at ``anchor``, and how to name a row's key."""
    zone, columns, labels = ZoneInfo(query.tz), [], {}
    for position, group in enumerate(query.group_by):
        if group in measures.TIME_GROUPS:
            ends = measures.bucket_ends(query.start, query.end, group, zone)
            labels[position] = [label for label, _ in ends]
            columns.append(_count_before(anchor, [moment for _, moment in ends], 0, len(ends) - 1))
        else:
            columns.append(_column(facts, group))

    def named(row):
        return tuple(labels[i][value] if i in labels else value for i, value in enumerate(row[:len(columns)]))
    return columns, named


def _per_key(session, query, scope, anchor_name, aggregates, *conditions, activity=None, per_ticket=False):
    """Rows of (key, aggregates...) over the tickets anchored in the period at ``anchor_name`` (a column of
    the ticket facts, or the ``at`` of their activities of kind ``activity``); ``per_ticket``: a row per
    ticket (``aggregates`` are then its columns), not per key. A key with nothing counted has no row."""
    facts = TicketFact.__table__
    if activity is None:
        anchor, source = facts.c[anchor_name], facts
    else:
        moves = TicketActivity.__table__
        anchor = moves.c.at
        source = moves.join(facts, facts.c.number == moves.c.ticket)
        conditions += (moves.c.kind == activity,)
    columns, named = _keys(query, anchor, facts)
    columns = [column.label(f"group_{i}") for i, column in enumerate(columns)]
    statement = (select(*columns, *aggregates).select_from(source)
                 .where(anchor >= query.start, anchor < query.end, *conditions, *_narrowed(facts, query, scope)))
    if not per_ticket:
        statement = statement.group_by(*columns)
    return [(named(row), *row[len(columns):]) for row in session.execute(statement)
            if per_ticket or row[len(columns)]]


def _count(name):
    return func.count().label(name)


def _sum_of(condition):
    return func.sum(case((condition, 1), else_=0))


def _volume(session, query, scope):
    return measures.Data(counted={
        "created": _per_key(session, query, scope, "created_at", [_count("n")]),
        "solved": _per_key(session, query, scope, "solved_at", [_count("n")]),
        "reopened": _per_key(session, query, scope, None, [_count("n")], activity="reopen")})


def _durations(anchor, calendar, business):
    def load(session, query, scope):
        facts = TicketFact.__table__
        return measures.Data(values=tuple(_per_key(session, query, scope, anchor, [facts.c[calendar], facts.c[business]],
                                                   facts.c[calendar].is_not(None), per_ticket=True)))
    return load


def _sla(session, query, scope):
    facts = TicketFact.__table__
    breached = or_(facts.c.sla_first_response_breached, facts.c.sla_resolution_breached)
    return measures.Data(values=tuple(_per_key(session, query, scope, "solved_at", [_count("n"), _sum_of(breached)],
                                               facts.c.sla_policy.is_not(None))))


def _escalations(session, query, scope):
    facts = TicketFact.__table__
    return measures.Data(values=tuple(_per_key(session, query, scope, "created_at", [
        _count("n"), _sum_of(facts.c.escalations > 0), func.sum(facts.c.escalations), func.sum(facts.c.tier_moves)])))


def _one_touch(session, query, scope):
    facts = TicketFact.__table__
    return measures.Data(values=tuple(_per_key(session, query, scope, "solved_at", [
        _count("n"), _sum_of(and_(facts.c.agent_replies == 1, facts.c.reopens == 0))])))


def _deflection(session, query, scope):
    facts = TicketFact.__table__
    tickets = _per_key(session, query, scope, "created_at", [_count("n")],
                       facts.c.channel.in_(measures.PORTAL_CHANNELS))
    suggestions = ()
    if scope.everything:
        rows = session.scalars(select(Deflection).where(Deflection.deflected_at >= query.start,
                                                        Deflection.deflected_at < query.end))
        suggestions = tuple(measures.Suggestion(shown_at=r.shown_at, deflected_at=r.deflected_at) for r in rows)
    return measures.Data(counted={"portal_tickets": tickets}, suggestions=suggestions)


COUNTED = {"volume": _volume, "first_response": _durations("first_response_at", "first_response_seconds",
                                                           "first_response_business_seconds"),
           "resolution": _durations("solved_at", "resolution_seconds", "resolution_business_seconds"),
           "sla": _sla, "escalations": _escalations, "one_touch": _one_touch, "deflection": _deflection}


def load_backlog(session, query, scope, now):
    """The backlog's records: the totals standing now and the status moves since its first bucket's end, both
    counted in SQL by the query's dimensions (filtered, as ``scope`` may see). Reads the moves since the period
    began, never the history before it."""
    query = measures.backlog_query(query)
    ends = [moment for _, moment in measures.backlog_ends(query, now)]
    if not ends:
        return measures.Data()
    dimensions = [g for g in query.group_by if g not in measures.TIME_GROUPS]
    totals = BacklogTotal.__table__
    columns = [_column(totals, name) for name in dimensions]
    standing = tuple(
        measures.Standing(category=row[0], dims=tuple(value or None for value in row[1:-1]), tickets=row[-1])
        for row in session.execute(select(totals.c.status_category, *columns, func.sum(totals.c.tickets))
                                   .where(*_narrowed(totals, query, scope))
                                   .group_by(totals.c.status_category, *columns)))
    moves, facts = TicketActivity.__table__, TicketFact.__table__
    after = _count_before(moves.c.at, ends, 0, len(ends)).label("after")
    columns = [_column(facts, name) for name in dimensions]
    statement = (select(after, moves.c.value, moves.c.previous, *columns, func.count())
                 .where(moves.c.kind == "status", moves.c.at >= ends[0])
                 .group_by(after, moves.c.value, moves.c.previous, *columns))
    conditions = _narrowed(facts, query, scope)
    if columns or conditions:  # a ticket's dimensions only when the query needs them
        statement = statement.join_from(moves, facts, facts.c.number == moves.c.ticket).where(*conditions)
    moved = tuple(measures.Moved(after=row[0], value=row[1], previous=row[2], dims=tuple(row[3:-1]), moves=row[-1])
                  for row in session.execute(statement))
    return measures.Data(standing=standing, moved=moved)


def _count_before(column, ends, low, high):
    """How many of ``ends`` (sorted) are at or before ``column``, as nested CASEs halving the range: a row
    passes log2(buckets) comparisons, and the counting stays in SQL."""
    if low == high:
        return literal(low)
    middle = (low + high + 1) // 2
    return case((column < ends[middle - 1], _count_before(column, ends, low, middle - 1)),
                else_=_count_before(column, ends, middle, high))
