"""Reading the read model for a report: the rows a period can touch, as frozen records (``measures``), limited
to what the viewer may see. Plain functions of a SQLAlchemy session."""
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


TICKET_MEASURES = ("volume", "first_response", "resolution", "sla", "escalations", "one_touch", "agents",
                   "deflection")
# the moments a measure counts tickets by: only the tickets with one of them in the period are read, each
# through its index, so a report costs what its period holds, not the whole history
ANCHORS = {"volume": ("created_at", "solved_at"), "first_response": ("first_response_at",),
           "resolution": ("solved_at",), "sla": ("solved_at",), "escalations": ("created_at",),
           "one_touch": ("solved_at",), "agents": ("solved_at",), "deflection": ("created_at",)}
# and the activities it counts (a reopen, a reply), whose tickets are read too
ACTIVITY_KINDS = {"volume": ("reopen",), "agents": ("reply",)}
COLUMN_OF = {"policy": "sla_policy"}  # a dimension's column in ticket_facts, where its name differs


def _column(table, dimension):
    return table.c[COLUMN_OF.get(dimension, dimension)] if table is TicketFact.__table__ else table.c[dimension]


def _narrowed(table, query, scope):
    """SQL conditions on ``table`` (ticket facts or backlog totals) for the query's filters and the scope."""
    empty = "" if table is BacklogTotal.__table__ else None  # how the table writes no value
    conditions = [_column(table, name) == value for name, value in query.filters]
    if not scope.everything:
        conditions.append(or_(_column(table, "team").in_(sorted(scope.teams) or [empty]),
                              _column(table, "agent").in_(sorted(scope.assignees) or [empty])))
    return conditions


def load(session, query, scope, now):
    """The records ``query``'s measure needs (``measures.Query``), as ``scope`` may see them."""
    measure, start, end = query.measure, query.start, query.end
    facts, activities, answers, chats, suggestions = (), (), (), (), ()
    if measure == "backlog":
        return load_backlog(session, query, scope, now)
    if measure in TICKET_MEASURES:
        table = TicketFact.__table__
        kinds = ACTIVITY_KINDS.get(measure, ())
        anchored = [and_(table.c[name] >= start, table.c[name] < end) for name in ANCHORS[measure]]
        if kinds:
            anchored.append(table.c.number.in_(select(TicketActivity.ticket).where(
                TicketActivity.kind.in_(kinds), TicketActivity.at >= start, TicketActivity.at < end)))
        conditions = _narrowed(table, query, scope)
        if measure == "deflection":
            conditions.append(table.c.channel.in_(measures.PORTAL_CHANNELS))
        # plain rows, not ORM objects: a report reads many and changes none
        facts = tuple(_fact(row) for row in session.execute(select(*table.c).where(or_(*anchored), *conditions)))
        if kinds and facts:
            numbers = {f.number for f in facts}
            rows = session.execute(select(*TicketActivity.__table__.c).where(
                TicketActivity.kind.in_(kinds), TicketActivity.at >= start, TicketActivity.at < end))
            activities = tuple(measures.Activity(ticket=r.ticket, kind=r.kind, at=r.at, value=r.value, actor=r.actor,
                                                 version=r.version) for r in rows if r.ticket in numbers)
    if measure in ("csat", "nps", "agents"):
        kind = "nps" if measure == "nps" else "csat"
        rows = session.scalars(select(SurveyAnswer).where(SurveyAnswer.kind == kind, SurveyAnswer.submitted_at >= start,
                                                          SurveyAnswer.submitted_at < end))
        answers = tuple(measures.Answer(kind=r.kind, submitted_at=r.submitted_at, score=r.score, comment=r.comment,
                                        ticket=r.ticket, team=r.team, agent=r.agent, channel=r.channel,
                                        language=r.language)
                        for r in rows if scope.allows(r.team, r.agent))
    if measure == "chats":
        rows = session.scalars(select(ChatFact).where(ChatFact.started_at >= start, ChatFact.started_at < end))
        chats = tuple(measures.Chat(id=r.id, started_at=r.started_at, answered_at=r.answered_at, outcome=r.outcome,
                                    agent=r.agent) for r in rows if scope.allows(None, r.agent))
    if measure == "deflection" and scope.everything:
        rows = session.scalars(select(Deflection).where(Deflection.deflected_at >= start, Deflection.deflected_at < end))
        suggestions = tuple(measures.Suggestion(shown_at=r.shown_at, deflected_at=r.deflected_at) for r in rows)
    return measures.Data(facts=facts, activities=activities, answers=answers, chats=chats, suggestions=suggestions)


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
