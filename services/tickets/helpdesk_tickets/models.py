"""Tables of the tickets service. Only this service reads or writes them."""
from typing import Optional

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from helpdesk_common.inbox import ProcessedEventMixin
from helpdesk_common.database import UtcDateTime, utcnow
from helpdesk_common.outbox import OutboxMixin

Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite only autoincrements INTEGER keys


class Base(DeclarativeBase):
    pass


class Organisation(Base):
    """A customer company. Its contacts belong to it by their primary address's domain
    (``OrganisationDomain``) or by an admin's choice; ``shared``: members see each other's tickets."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    domains: Mapped[list["OrganisationDomain"]] = relationship(order_by="OrganisationDomain.domain", lazy="selectin",
                                                               cascade="all, delete-orphan")


class OrganisationDomain(Base):
    """An email domain and the one organisation its addresses belong to (a domain is never two's)."""

    __tablename__ = "organisation_domains"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)


class Contact(Base):
    """Someone who asks for help, known by one or more identifiers (``ContactIdentifier``).

    ``email`` is the primary address (one of its email identifiers, or None for a contact known only by
    phone or handle); it stays unique, which is what lets replicas create the same new contact at once.
    """

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    email: Mapped[Optional[str]] = mapped_column(String(254), unique=True)
    name: Mapped[Optional[str]] = mapped_column(String(200))
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    erased_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)  # personal data erased on request
    # No foreign-key constraint: SQLite cannot add one to an existing table without rebuilding it, which the
    # tickets' own key on contacts forbids. Organisations are never deleted, and only organisations.py writes it.
    organisation_id: Mapped[Optional[int]] = mapped_column(Id, index=True)
    # "domain": joined (or left) by its address's domain, which may move it again; "admin": an admin's choice
    # (in one, or in none), which domains never override.
    organisation_set_by: Mapped[Optional[str]] = mapped_column(String(10))
    organisation: Mapped[Optional[Organisation]] = relationship(
        primaryjoin="Organisation.id == foreign(Contact.organisation_id)", lazy="joined", viewonly=True)
    identifiers: Mapped[list["ContactIdentifier"]] = relationship(order_by="ContactIdentifier.id", lazy="select",
                                                                  cascade="all, delete-orphan")


class ContactIdentifier(Base):
    """One normalised identifier of a contact: ``email`` (lower case), ``phone`` (E.164) or ``social``
    (``platform:handle``). Deliberately not unique across contacts: a shared family phone or a team
    mailbox can belong to several, and then the sender is ambiguous rather than guessed."""

    __tablename__ = "contact_identifiers"
    __table_args__ = (
        UniqueConstraint("contact_id", "kind", "value", name="uq_contact_identifiers_contact_kind_value"),
        Index("ix_contact_identifiers_kind_value", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status_id", "status", "id"),
        Index("ix_tickets_assignee_id", "assignee", "id"),
        Index("ix_tickets_team_id", "team", "id"),
        Index("ix_tickets_requester_id", "requester_id", "id"),
        # the workspace's lists: sort by last change or priority, count each view (ticket_lists)
        Index("ix_tickets_updated_at_id", "updated_at", "id"),
        Index("ix_tickets_priority_id", "priority", "id"),
        # covering for the counts of "mine" and "unassigned" within an agent's teams (team checked in the index)
        Index("ix_tickets_assignee_status_team", "assignee", "status", "team"),
        Index("ix_tickets_team_status", "team", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # Derived from ``id`` (the database's sequence) in the same transaction: unique across replicas.
    number: Mapped[Optional[str]] = mapped_column(String(40), unique=True)
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    # None when the sender's identifier belongs to several contacts: an agent links the right one.
    requester_id: Mapped[Optional[int]] = mapped_column(ForeignKey("contacts.id"))
    requester: Mapped[Optional[Contact]] = relationship(lazy="joined")
    # The address this request came from (replies go there) and the name it gave.
    requester_email: Mapped[Optional[str]] = mapped_column(String(254), index=True)
    requester_name: Mapped[Optional[str]] = mapped_column(String(200))
    requester_ambiguous: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    channel: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(10))
    severity: Mapped[Optional[str]] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(30))
    team: Mapped[Optional[str]] = mapped_column(String(100))
    tier: Mapped[int] = mapped_column(Integer, default=1)
    assignee: Mapped[Optional[str]] = mapped_column(String(100))
    # The sequence number of the last routing decision applied (assignee, team and tier are routing's):
    # an older decision arriving late changes nothing.
    routing_sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    language: Mapped[Optional[str]] = mapped_column(String(2))
    category: Mapped[Optional[str]] = mapped_column(String(100))
    tags: Mapped[list] = mapped_column(JSON, default=list)
    custom_fields: Mapped[dict] = mapped_column(JSON, default=dict)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    first_response_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    resolved_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    closed_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    # Set when this ticket (a duplicate) was merged into another: the survivor's number.
    merged_into: Mapped[Optional[str]] = mapped_column(String(40))
    sla_clocks: Mapped[list["SlaClock"]] = relationship(order_by="SlaClock.metric", lazy="select")

    # Two agents saving the same ticket at once: the second gets a conflict, not a silent overwrite.
    __mapper_args__ = {"version_id_col": version}


class Message(Base):
    """A public reply (the customer sees it) or an internal note (agents only)."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    visibility: Mapped[str] = mapped_column(String(10))
    author: Mapped[str] = mapped_column(String(254))
    author_role: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class HistoryRecord(Base):
    """Who changed which field of a ticket, when, from what to what."""

    __tablename__ = "ticket_history"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(254))
    field: Mapped[str] = mapped_column(String(60))
    old: Mapped[Optional[object]] = mapped_column(JSON)
    new: Mapped[Optional[object]] = mapped_column(JSON)


class TicketLink(Base):
    """One side of a link between two tickets: written for both sides, so each ticket reads its own.

    ``kind``: ``related``, or ``merged_into`` / ``merged_from`` once one was merged into the other."""

    __tablename__ = "ticket_links"
    __table_args__ = (UniqueConstraint("ticket_id", "other_id", "kind", name="uq_ticket_links_ticket_other_kind"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    other_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class CannedReply(Base):
    """A canned reply (macro): shared (``owner`` None) or one agent's own (``owner``: their actor name)."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    owner: Mapped[Optional[str]] = mapped_column(String(100), index=True)
    status: Mapped[Optional[str]] = mapped_column(String(30))
    priority: Mapped[Optional[str]] = mapped_column(String(10))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class TicketFollower(Base):
    """An agent (by actor name) who follows a ticket: told of its changes and messages."""

    __tablename__ = "ticket_followers"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    actor: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class Notification(Base):
    """What one agent (``recipient``, an actor name) should know: a mention, or a followed ticket's change."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_recipient_id", "recipient", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    recipient: Mapped[str] = mapped_column(String(100))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(254))
    detail: Mapped[Optional[object]] = mapped_column(JSON)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    read_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)


class TicketPresence(Base):
    """Who has a ticket open right now, and whether they are typing a reply: each open ticket page says so
    every few seconds; a row older than the presence window means gone (collision warnings)."""

    __tablename__ = "ticket_presence"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    actor: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[Optional[str]] = mapped_column(String(200))
    typing: Mapped[bool] = mapped_column(Boolean, default=False)
    seen_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class CustomFieldDefinition(Base):
    """A field an admin added to tickets, with its type and whether it is required."""

    __tablename__ = "custom_field_definitions"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(10))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    options: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class IdempotencyKey(Base):
    """A client's Idempotency-Key and the ticket its first request created."""

    __tablename__ = "idempotency_keys"

    client: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class MessageKey(Base):
    """An idempotency key of ``add_message`` (a channel's own message id, e.g. an email's Message-ID) and
    the message its first call added: a repeated call answers with that message instead of adding one."""

    __tablename__ = "message_idempotency_keys"

    client: Mapped[str] = mapped_column(String(254), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class Outbox(OutboxMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class SlaClock(Base):
    """One SLA clock of a ticket (``first_response`` or ``resolution``), in business time.

    ``due_at``/``warn_at`` are when the target and the warning threshold fall due (moved by every pause
    once it ends); ``paused_at`` is set while the ticket waits on the customer, ``stopped_at`` once the
    goal is met; ``warned_at``/``breached_at`` are claimed once each by the SLA timer (a conditional
    UPDATE), so several replicas never announce the same warning or breach twice.
    """

    __tablename__ = "sla_clocks"
    __table_args__ = (
        UniqueConstraint("ticket_id", "metric", name="uq_sla_clocks_ticket_metric"),
        Index("ix_sla_clocks_due_at", "due_at"),
        Index("ix_sla_clocks_warn_at", "warn_at"),
        # the running clocks alone (few, once most tickets are solved), by due time, holding every column the
        # SLA views ask about: their lists and counts read this index, not the clocks
        Index("ix_sla_clocks_running_due_at", "due_at", "ticket_id", "warn_at", "paused_at", "breached_at",
              sqlite_where=text("stopped_at IS NULL"), postgresql_where=text("stopped_at IS NULL")),
        # the same clocks by ticket: "breached" counts its distinct tickets in index order (no sort of them)
        Index("ix_sla_clocks_running_ticket", "ticket_id", "due_at", "warn_at", "paused_at", "breached_at",
              sqlite_where=text("stopped_at IS NULL"), postgresql_where=text("stopped_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    metric: Mapped[str] = mapped_column(String(20))
    policy: Mapped[Optional[str]] = mapped_column(String(100))
    target_seconds: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[object] = mapped_column(UtcDateTime)
    due_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    warn_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    # closed pauses as [[start, end], ...] (ISO 8601, UTC): business time in them never counts
    pauses: Mapped[list] = mapped_column(JSON, default=list)
    paused_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    stopped_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    elapsed_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # as of the last pause or stop
    warned_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    breached_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
