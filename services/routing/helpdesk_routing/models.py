"""Tables of the routing service. Only this service reads or writes them.

What routing knows of a ticket arrives in events (``ticket_created``, ``ticket_updated``): it keeps a
small record per ticket (``routed_tickets``: the queue and the current assignee), never the tickets
service's tables.

Concurrency (several replicas on one database): an agent's ``load`` only ever changes through one
conditional ``UPDATE ... SET load = load + 1 WHERE id = :id AND load < capacity AND presence = 'online'``
(see ``domain.claim_agent``); a ticket changes hands only through a conditional update of its
``routed_tickets`` row on its ``state`` and ``agent_id``. The database serialises both.
"""
from typing import Optional

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from helpdesk_common.inbox import ProcessedEventMixin
from helpdesk_common.database import UtcDateTime, utcnow
from helpdesk_common.outbox import OutboxMixin

Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite only autoincrements INTEGER keys


class Base(DeclarativeBase):
    pass


class Team(Base):
    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    tier: Mapped[int] = mapped_column(Integer, default=1)
    strategy: Mapped[str] = mapped_column(String(20), default="skills_and_load")
    escalates_to: Mapped[Optional[str]] = mapped_column(String(100))
    description: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (Index("ix_agents_presence_tier", "presence", "tier"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    languages: Mapped[list] = mapped_column(JSON, default=list)
    skills: Mapped[dict] = mapped_column(JSON, default=dict)
    tier: Mapped[int] = mapped_column(Integer, default=1)
    capacity: Mapped[int] = mapped_column(Integer, default=10)
    # Open tickets assigned to the agent. Changed only by conditional UPDATEs (domain.claim_agent,
    # domain.release_agent), never read-modify-written in Python.
    load: Mapped[int] = mapped_column(Integer, default=0)
    presence: Mapped[str] = mapped_column(String(10), default="offline")
    working_hours: Mapped[Optional[dict]] = mapped_column(JSON)
    # Round-robin state, in the database so every replica agrees: the id of the agent's latest
    # assignment (a database sequence). Among equals, the lowest goes first.
    last_assignment_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class AgentTeam(Base):
    __tablename__ = "agent_teams"
    __table_args__ = (Index("ix_agent_teams_team", "team", "agent_id"),)

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    team: Mapped[str] = mapped_column(ForeignKey("teams.name"), primary_key=True)


class Rule(Base):
    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    position: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    conditions: Mapped[dict] = mapped_column(JSON, default=dict)
    actions: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class RoutedTicket(Base):
    """A ticket as routing sees it: where it should go, and who has it (or that it waits)."""

    __tablename__ = "routed_tickets"
    __table_args__ = (
        # The team queues: waiting tickets of a team and tier, most urgent first, then oldest.
        Index("ix_routed_queue", "state", "team", "tier", "priority_rank", "created_at"),
        Index("ix_routed_agent", "agent_id", "state"),
    )

    number: Mapped[str] = mapped_column(String(40), primary_key=True)
    state: Mapped[str] = mapped_column(String(10))  # queued | assigned | released
    team: Mapped[Optional[str]] = mapped_column(String(100))
    tier: Mapped[int] = mapped_column(Integer, default=1)
    priority: Mapped[str] = mapped_column(String(10))
    # Negated in the index order: -3 urgent ... 0 low, so ascending order is most urgent first.
    priority_rank: Mapped[int] = mapped_column(Integer)
    language: Mapped[Optional[str]] = mapped_column(String(2))
    required_skills: Mapped[dict] = mapped_column(JSON, default=dict)
    rule: Mapped[Optional[str]] = mapped_column(String(100))
    agent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("agents.id"))
    status: Mapped[Optional[str]] = mapped_column(String(30))  # the ticket's status, last seen
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    # How many decisions routing announced for the ticket: each carries its number (``sequence``), so the
    # tickets service applies them in the order they were made, whatever order they arrive in.
    decisions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # An assignee set by hand who is not one of routing's agents (no load, no capacity); None otherwise.
    outside_assignee: Mapped[Optional[str]] = mapped_column(String(100))
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)  # the ticket's creation
    queued_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    updated_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class Assignment(Base):
    """Every assignment, automatic or by hand, with its reason: the audit trail of who had a ticket."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ticket_number: Mapped[str] = mapped_column(String(40), index=True)
    agent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("agents.id"))
    team: Mapped[Optional[str]] = mapped_column(String(100))
    tier: Mapped[int] = mapped_column(Integer, default=1)
    at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(254))
    manual: Mapped[bool] = mapped_column(Boolean, default=False)


class EscalationRecord(Base):
    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ticket_number: Mapped[str] = mapped_column(String(40), index=True)
    from_team: Mapped[Optional[str]] = mapped_column(String(100))
    to_team: Mapped[Optional[str]] = mapped_column(String(100))
    from_tier: Mapped[int] = mapped_column(Integer)
    to_tier: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(254))
    at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class Outbox(OutboxMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass
