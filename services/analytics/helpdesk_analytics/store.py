"""Reading the read model for a report: the rows a period can touch, as frozen records (``measures``), limited
to what the viewer may see. Plain functions of a SQLAlchemy session."""
from sqlalchemy import and_, or_, select

from . import measures
from .models import AgentName, ChatFact, Deflection, SurveyAnswer, TicketActivity, TicketFact

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


TICKET_MEASURES = ("volume", "backlog", "first_response", "resolution", "sla", "escalations", "one_touch",
                   "agents", "deflection")


def load(session, measure, start, end, scope):
    """The records ``measure`` needs for the period ``[start, end)``."""
    facts, activities, answers, chats, suggestions = (), (), (), (), ()
    if measure in TICKET_MEASURES:
        # a ticket created before the end that was still open at the start, or that moved in the period
        # plain rows, not ORM objects: a report reads many and changes none
        query = select(*TicketFact.__table__.c).where(TicketFact.created_at < end, or_(
            TicketFact.solved_at.is_(None), TicketFact.solved_at >= start, TicketFact.last_activity_at >= start))
        facts = tuple(_fact(row) for row in session.execute(query) if scope.allows(row.team, row.agent))
        kinds = {"volume": ("reopen",), "backlog": ("status",), "agents": ("reply",)}.get(measure)
        if kinds and facts:
            numbers = {f.number for f in facts}
            rows = session.execute(select(*TicketActivity.__table__.c).where(TicketActivity.kind.in_(kinds), and_(
                TicketActivity.at < end, TicketActivity.at >= start) if measure != "backlog" else TicketActivity.at < end))
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
