"""Tables of proactive problem detection (``surges``), beside the read model of ``models`` (same ``Base``).

- ``surge_tickets``: each new ticket as the detector sees it (category, team, channel, its wording and the
  terms the knowledge base's analysis made of it), keyed by ticket number: a repeated ``ticket_created``, or
  the same ticket told again, is one row.
- ``spikes``: each surge announced, keyed by what it is and the window it was found in, so two replicas
  finding the same surge at once announce it once (one of them fails on the key and retries).
- ``outbox``: the events analytics publishes (``spike_detected``).
- ``saved_reports`` (people's custom reports) and ``summary_mails`` (weekly summaries sent), beside them;
  ``summary_recipients``: the workspace accounts the gateway announced (``account_changed``), whose supervisors
  and admins get the weekly summary.
"""
from typing import Optional

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk_common.database import UtcDateTime
from helpdesk_common.outbox import OutboxMixin

from .models import Base

TEXT_CHARS = 2000  # of subject and description: enough to tell a problem by, and a bound on what is stored


class SurgeTicket(Base):
    __tablename__ = "surge_tickets"

    number: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[object] = mapped_column(UtcDateTime)
    category: Mapped[Optional[str]] = mapped_column(String(100))
    team: Mapped[Optional[str]] = mapped_column(String(100))
    channel: Mapped[Optional[str]] = mapped_column(String(40))
    language: Mapped[Optional[str]] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(300), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    terms: Mapped[Optional[str]] = mapped_column(Text)  # space-separated; null until analysed

    __table_args__ = (Index("ix_surge_tickets_created_at", "created_at"),)


class Spike(Base):
    __tablename__ = "spikes"

    spike_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[object] = mapped_column(UtcDateTime)
    window_end: Mapped[object] = mapped_column(UtcDateTime)
    count: Mapped[int] = mapped_column(Integer)
    baseline: Mapped[float] = mapped_column(Float)
    tickets: Mapped[list] = mapped_column(JSON)
    detected_at: Mapped[object] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_spikes_found", "dimension", "value", "window_end"),)


class Outbox(OutboxMixin, Base):
    pass


class SavedReport(Base):
    """A person's custom report (``saved_reports.py``): kept here beside the measures it names."""

    __tablename__ = "saved_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(200))  # the author's actor name, as the gateway tells it
    name: Mapped[str] = mapped_column(String(100))
    measure: Mapped[str] = mapped_column(String(30))
    group_by: Mapped[list] = mapped_column(JSON)
    filters: Mapped[dict] = mapped_column(JSON)
    period: Mapped[str] = mapped_column(String(20))
    start: Mapped[Optional[str]] = mapped_column(String(40))  # a fixed period's from and to, as given
    end: Mapped[Optional[str]] = mapped_column(String(40))
    tz: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[object] = mapped_column(UtcDateTime)

    __table_args__ = (UniqueConstraint("owner", "name", name="uq_saved_reports_owner_name"),)


class SummaryMail(Base):
    """A weekly summary sent (``weekly_summary.py``): one row per week and recipient, so a timer firing again,
    or in two replicas, sends none twice."""

    __tablename__ = "summary_mails"

    week: Mapped[str] = mapped_column(String(10), primary_key=True)  # ISO week, 2026-W45
    recipient: Mapped[str] = mapped_column(String(254), primary_key=True)
    sent_at: Mapped[object] = mapped_column(UtcDateTime)


class SummaryRecipient(Base):
    """A workspace account as the gateway last announced it (``account_changed``): analytics never reads the
    gateway's accounts, it keeps what it was told, the latest ``changed_at`` winning."""

    __tablename__ = "summary_recipients"

    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(20))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[object] = mapped_column(UtcDateTime)
