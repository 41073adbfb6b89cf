"""The surveys service's tables: one CSAT survey per ticket, the outbox, the events already handled."""
from typing import Optional

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from helpdesk_common.database import UtcDateTime, utcnow
from helpdesk_common.inbox import ProcessedEventMixin
from helpdesk_common.outbox import OutboxMixin


class Base(DeclarativeBase):
    pass


class Survey(Base):
    """A CSAT survey of one ticket: asked once, when the ticket was first resolved; the latest answer."""

    __tablename__ = "csat_surveys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ticket_number: Mapped[str] = mapped_column(String(40), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(2))
    channel: Mapped[str] = mapped_column(String(20))
    team: Mapped[Optional[str]] = mapped_column(String(100))
    assignee: Mapped[Optional[str]] = mapped_column(String(100))
    contact_id: Mapped[Optional[int]] = mapped_column(Integer)
    asked_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    mailed_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    rating: Mapped[Optional[int]] = mapped_column(Integer)
    comment: Mapped[Optional[str]] = mapped_column(Text)
    answer_id: Mapped[Optional[str]] = mapped_column(String(36))
    answered_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)


class SurveySecret(Base):
    """The key that signs survey links, made on first use and shared by every replica."""

    __tablename__ = "survey_secrets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class Outbox(OutboxMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class NpsSurvey(Base):
    """A periodic "would you recommend us?" survey of one customer (address), at most once per interval."""

    __tablename__ = "nps_surveys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    language: Mapped[str] = mapped_column(String(2))
    contact_id: Mapped[Optional[int]] = mapped_column(Integer)
    asked_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    mailed_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    score: Mapped[Optional[int]] = mapped_column(Integer)
    comment: Mapped[Optional[str]] = mapped_column(Text)
    answer_id: Mapped[Optional[str]] = mapped_column(String(36))
    answered_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)


class ErasedTicket(Base):
    """A ticket whose requester's personal data was erased (``contact_erased``): a resolution announced before
    the erasure and handled after it still carries the address; nobody is asked. Only the number."""

    __tablename__ = "erased_tickets"

    ticket_number: Mapped[str] = mapped_column(String(40), primary_key=True)
    erased_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
