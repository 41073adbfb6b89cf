"""The business metrics Prometheus scrapes from analytics (dashboards and alerts read them): what is open now,
by team and priority; SLA at risk and breached; chats waiting; CSAT over the last days. Plain functions of a
SQLAlchemy session and an explicit ``now``; the service sets its gauges from them on a timer."""
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, func, select

from .models import ChatFact, SurveyAnswer, TicketFact
from .settings import SOLVED

CSAT_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Snapshot:
    open_tickets: dict = field(default_factory=dict)  # (team, priority) -> count
    sla_at_risk: dict = field(default_factory=dict)  # team -> open tickets past a warning, not breached
    sla_breached: dict = field(default_factory=dict)  # team -> open tickets with a breached clock
    waiting_chats: int = 0
    csat_answers: int = 0
    csat_satisfied: int = 0
    created_total: int = 0

    @property
    def csat(self):
        return self.csat_satisfied / self.csat_answers if self.csat_answers else None


def snapshot(session, now):
    still_open = TicketFact.status_category.not_in(SOLVED)
    open_tickets = {(team or "", priority or ""): count for team, priority, count in session.execute(
        select(TicketFact.team, TicketFact.priority, func.count()).where(still_open, TicketFact.created_at.is_not(None))
        .group_by(TicketFact.team, TicketFact.priority))}
    breached = TicketFact.sla_first_response_breached | TicketFact.sla_resolution_breached
    at_risk = {team or "": count for team, count in session.execute(
        select(TicketFact.team, func.count()).where(still_open, TicketFact.sla_warned, ~breached)
        .group_by(TicketFact.team))}
    broken = {team or "": count for team, count in session.execute(
        select(TicketFact.team, func.count()).where(still_open, breached).group_by(TicketFact.team))}
    waiting = session.scalar(select(func.count()).select_from(ChatFact).where(
        ChatFact.answered_at.is_(None), ChatFact.ended_at.is_(None), ChatFact.started_at.is_not(None)))
    answers, satisfied = session.execute(select(func.count(), func.count().filter(SurveyAnswer.score >= 4)).where(and_(
        SurveyAnswer.kind == "csat", SurveyAnswer.submitted_at >= now - CSAT_WINDOW,
        SurveyAnswer.submitted_at <= now))).one()
    created = session.scalar(select(func.count()).select_from(TicketFact).where(TicketFact.created_at.is_not(None)))
    return Snapshot(open_tickets=open_tickets, sla_at_risk=at_risk, sla_breached=broken, waiting_chats=waiting or 0,
                    csat_answers=answers or 0, csat_satisfied=satisfied or 0, created_total=created or 0)
