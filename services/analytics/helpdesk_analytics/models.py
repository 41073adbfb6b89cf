"""Tables of the analytics service: a read model built from events. Only this service reads or writes them.

- ``ticket_facts``: one row per ticket, its latest known state (from the ticket view with the highest
  ``version`` seen: events out of order never move a ticket back) and its counters (each event counted once:
  ``processed_events``), with the durations derived from them.
- ``ticket_activities``: dated moments of a ticket that reports count by period (status moves, reopens,
  agents' public replies, escalations), one row per event: a repeat cannot count twice (its event id is
  the key).
- ``survey_answers`` (CSAT and NPS, the latest answer of each survey), ``chat_facts``, ``deflections``,
  ``agents`` (an assignee's name and email, from ``ticket_assigned``).
"""
from typing import Optional

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from helpdesk_common.database import UtcDateTime
from helpdesk_common.inbox import ProcessedEventMixin


class Base(DeclarativeBase):
    pass


class TicketFact(Base):
    __tablename__ = "ticket_facts"

    number: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)  # of the ticket view the snapshot fields come from
    created_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    status: Mapped[Optional[str]] = mapped_column(String(30))
    status_category: Mapped[Optional[str]] = mapped_column(String(10))
    team: Mapped[Optional[str]] = mapped_column(String(100))
    agent: Mapped[Optional[str]] = mapped_column(String(100))
    channel: Mapped[Optional[str]] = mapped_column(String(40))
    priority: Mapped[Optional[str]] = mapped_column(String(20))
    category: Mapped[Optional[str]] = mapped_column(String(100))
    language: Mapped[Optional[str]] = mapped_column(String(10))
    tier: Mapped[int] = mapped_column(Integer, default=1)
    first_response_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    resolved_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    closed_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    sla_policy: Mapped[Optional[str]] = mapped_column(String(100))
    sla_first_response_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    sla_resolution_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    sla_warned: Mapped[bool] = mapped_column(Boolean, default=False)  # a clock passed its warning threshold
    # derived from the above and the ticket's activities (facts.refresh)
    first_response_seconds: Mapped[Optional[float]] = mapped_column(Float)
    first_response_business_seconds: Mapped[Optional[float]] = mapped_column(Float)
    resolution_seconds: Mapped[Optional[float]] = mapped_column(Float)
    resolution_business_seconds: Mapped[Optional[float]] = mapped_column(Float)
    reopens: Mapped[int] = mapped_column(Integer, default=0)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    tier_moves: Mapped[int] = mapped_column(Integer, default=0)
    agent_replies: Mapped[int] = mapped_column(Integer, default=0)
    solved_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)  # resolved or closed now: since when
    last_activity_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    # the ticket's last status move (its moment and the category it entered): what ``backlog_totals`` counts
    settled_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    settled_category: Mapped[Optional[str]] = mapped_column(String(10))

    # a report reads the tickets whose moment (created, first answered, solved) falls in its period: an index each
    __table_args__ = (Index("ix_ticket_facts_created_at", "created_at"),
                      Index("ix_ticket_facts_solved_at", "solved_at"),
                      Index("ix_ticket_facts_first_response_at", "first_response_at"),
                      Index("ix_ticket_facts_open", "status_category", "team", "priority"))


class TicketActivity(Base):
    """A dated moment of a ticket: ``kind`` status (``value``: the category entered), reopen, reply
    (``actor``: the agent), escalation (``value``: ``tier`` when the tier moved).

    Keyed by what names the moment in the ticket's own history (the time of a status change, a message's
    id, routing's decision sequence), not by event id: a rebuild from the tickets service's export and the
    live event of the same moment meet on one row, so nothing counts twice."""

    __tablename__ = "ticket_activities"

    ticket: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[object] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=0)
    value: Mapped[Optional[str]] = mapped_column(String(30))
    actor: Mapped[Optional[str]] = mapped_column(String(100))
    # of a status move: the category the ticket left (None for its first), derived from its moves in order
    previous: Mapped[Optional[str]] = mapped_column(String(30))

    __table_args__ = (Index("ix_ticket_activities_at", "kind", "at"),)


BACKLOG_KEY = ("status_category", "team", "agent", "channel", "priority", "category", "language", "policy")


class BacklogTotal(Base):
    """How many tickets stand in each status category now, by their dimensions: every ticket counted in the
    category of its last status move (``ticket_facts.settled_category``), kept by ingestion as tickets move.

    A backlog at a past moment is this minus the moves since (each move's ``previous`` and ``value``), so a
    report reads the moves of its period and after, never the whole history. Dimensions are '' for none (a
    NULL would make two rows of one key in a unique index)."""

    __tablename__ = "backlog_totals"

    status_category: Mapped[str] = mapped_column(String(10), primary_key=True)
    team: Mapped[str] = mapped_column(String(100), primary_key=True)
    agent: Mapped[str] = mapped_column(String(100), primary_key=True)
    channel: Mapped[str] = mapped_column(String(40), primary_key=True)
    priority: Mapped[str] = mapped_column(String(20), primary_key=True)
    category: Mapped[str] = mapped_column(String(100), primary_key=True)
    language: Mapped[str] = mapped_column(String(10), primary_key=True)
    policy: Mapped[str] = mapped_column(String(100), primary_key=True)
    tickets: Mapped[int] = mapped_column(Integer, default=0)


class SurveyAnswer(Base):
    """The latest answer of one survey (``kind`` csat or nps): a later answer replaces an earlier one."""

    __tablename__ = "survey_answers"

    survey_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(4), primary_key=True)
    answer_id: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[object] = mapped_column(UtcDateTime)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[Optional[str]] = mapped_column(Text)
    ticket: Mapped[Optional[str]] = mapped_column(String(40))
    channel: Mapped[Optional[str]] = mapped_column(String(40))
    team: Mapped[Optional[str]] = mapped_column(String(100))
    agent: Mapped[Optional[str]] = mapped_column(String(100))
    language: Mapped[Optional[str]] = mapped_column(String(10))
    contact_id: Mapped[Optional[int]] = mapped_column(BigInteger)  # whose: found again by a contact's erasure

    __table_args__ = (Index("ix_survey_answers_submitted", "kind", "submitted_at"),)


class ChatFact(Base):
    __tablename__ = "chat_facts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    answered_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    ended_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    outcome: Mapped[Optional[str]] = mapped_column(String(12))
    agent: Mapped[Optional[str]] = mapped_column(String(100))
    ticket: Mapped[Optional[str]] = mapped_column(String(40))


class Deflection(Base):
    """A suggestion shown in the portal, and whether the visitor gave up submitting a ticket."""

    __tablename__ = "deflections"

    suggestion_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    shown_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    deflected_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)


class AgentName(Base):
    """How an assignee (``agent-3``) is called and reached: from ``ticket_assigned``."""

    __tablename__ = "agents"

    assignee: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[Optional[str]] = mapped_column(String(200))
    email: Mapped[Optional[str]] = mapped_column(String(254), index=True)


class ProcessedEvent(ProcessedEventMixin, Base):
    pass
