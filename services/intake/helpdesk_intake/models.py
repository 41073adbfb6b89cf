"""Tables of the intake service. Only this service reads or writes them."""
from typing import Optional

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from helpdesk_common.inbox import ProcessedEventMixin
from helpdesk_common.database import UtcDateTime, utcnow
from helpdesk_common.outbox import OutboxMixin

Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite only autoincrements INTEGER keys


class Base(DeclarativeBase):
    pass


class InboundMessage(Base):
    """Every message a channel brought in, once: the dedupe record and what became of it.

    A row is written ``pending`` (claimed) before the tickets service is called and turned ``done`` in the
    transaction that stages its ``message_received`` event. The two unique keys make a message seen twice
    (restart mid-poll, two replicas on one mailbox, a resend with a new Message-ID) count once.
    """

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_inbound_external_id"),
        UniqueConstraint("channel", "content_hash", name="uq_inbound_content_hash"),
        Index("ix_inbound_state", "state", "claimed_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(20))
    mailbox: Mapped[Optional[str]] = mapped_column(String(200))
    external_id: Mapped[Optional[str]] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10))          # pending | done
    outcome: Mapped[Optional[str]] = mapped_column(String(20))  # created | appended | ignored | quarantined
    reason: Mapped[Optional[str]] = mapped_column(String(200))
    action: Mapped[Optional[str]] = mapped_column(String(10))   # new | reply: what the claim was for
    ticket_number: Mapped[Optional[str]] = mapped_column(String(40), index=True)
    follows: Mapped[Optional[str]] = mapped_column(String(40))  # the closed ticket a new one continues
    idempotency_key: Mapped[Optional[str]] = mapped_column(String(200))
    sender: Mapped[Optional[str]] = mapped_column(String(254))
    subject: Mapped[Optional[str]] = mapped_column(Text)
    body: Mapped[Optional[str]] = mapped_column(Text)
    quoted: Mapped[Optional[str]] = mapped_column(Text)
    html: Mapped[Optional[str]] = mapped_column(Text)
    claimed_by: Mapped[Optional[str]] = mapped_column(String(100))
    claimed_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    done_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)


class ThreadMessageId(Base):
    """A Message-ID intake received or sent, and its ticket: how a reply without a number finds it."""

    __tablename__ = "thread_message_ids"

    message_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    ticket_number: Mapped[str] = mapped_column(String(40), index=True)
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    # A customer's mail that asked answers to go elsewhere (one Reply-To, its sender vouched for): mail on
    # the ticket goes there while this is the customer's latest mail.
    reply_to: Mapped[Optional[str]] = mapped_column(String(254))


class Attachment(Base):
    """A file that came with a message: metadata here, content on disk (named by its SHA-256)."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), index=True)
    ticket_number: Mapped[str] = mapped_column(String(40), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(300))
    content_id: Mapped[Optional[str]] = mapped_column(String(300))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class QuarantinedMessage(Base):
    """A message that could not become a ticket, kept whole with the reason, for an operator."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(20))
    mailbox: Mapped[Optional[str]] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    subject: Mapped[Optional[str]] = mapped_column(Text)
    sender: Mapped[Optional[str]] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(10), default="held")  # held | resolved | discarded
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    ticket_number: Mapped[Optional[str]] = mapped_column(String(40))
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    retried_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    # Why, as a stable code: unparseable | too_large | parse_failed | unauthenticated | refused
    code: Mapped[Optional[str]] = mapped_column(String(40))
    headers_only: Mapped[bool] = mapped_column(Boolean, default=False)  # too large: the body was never fetched
    decided_by: Mapped[Optional[str]] = mapped_column(String(254))  # who discarded (or retried) it last
    decided_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)


class ParseAttempt(Base):
    """A parse begun on a fetched message (by its SHA-256), committed *before* parsing: a message that
    kills or hangs the parser is counted even when the process dies with it, and is quarantined, unparsed,
    once it reaches ``MAIL_PARSE_ATTEMPTS``. Deleted when the message parsed."""

    __tablename__ = "parse_attempts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    mailbox: Mapped[Optional[str]] = mapped_column(String(200))
    uid: Mapped[Optional[str]] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    first_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    last_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class OutgoingMail(Base):
    """Mail to a customer, written in the transaction of the event that caused it, sent by the relay.

    ``pending`` rows are sent when ``next_attempt_at`` is due; a failure schedules the next attempt with
    backoff; after the last attempt (or a permanent refusal) the row is ``failed`` and waits for an
    operator's retry. Nothing is deleted.
    """

    __tablename__ = "outgoing_mail"
    __table_args__ = (Index("ix_outgoing_due", "status", "next_attempt_at"),
                      Index("ix_outgoing_mail_to_kind", "to_address", "kind", "created_at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))  # acknowledgement | reply | status
    ticket_number: Mapped[str] = mapped_column(String(40), index=True)
    to_address: Mapped[str] = mapped_column(String(254))
    to_name: Mapped[Optional[str]] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(2))
    message_id: Mapped[str] = mapped_column(String(300), unique=True)
    in_reply_to: Mapped[Optional[str]] = mapped_column(String(500))
    references: Mapped[list] = mapped_column(JSON, default=list)
    automatic: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    locked_until: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)


class WebSubmission(Base):
    """When an address last submitted the web form: the basis of its rate limit."""

    __tablename__ = "web_submissions"
    __table_args__ = (Index("ix_web_submissions_address_at", "address", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(254))
    at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class SocialThread(Base):
    """A conversation on a social platform and the ticket it belongs to."""

    __tablename__ = "social_threads"

    platform: Mapped[str] = mapped_column(String(30), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    ticket_number: Mapped[str] = mapped_column(String(40), index=True)
    handle: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class ErasedTicket(Base):
    """A ticket whose requester's personal data was erased (``contact_erased``): an event about it that was
    still on its way (a reply, a status change) must not mail the address it carried. Only the number."""

    __tablename__ = "erased_tickets"

    ticket_number: Mapped[str] = mapped_column(String(40), primary_key=True)
    erased_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


class Outbox(OutboxMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class ChatSession(Base):
    """A live chat between a customer and an agent. ``waiting`` until an agent joins (``active``), then
    ``ended``. Its ticket exists once answered, or once it ended unanswered (``ticket_number``)."""

    __tablename__ = "chat_sessions"
    __table_args__ = (Index("ix_chat_sessions_state", "state", "started_at"),
                      Index("ix_chat_sessions_customer", "customer_email", "started_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    state: Mapped[str] = mapped_column(String(10))            # waiting | active | ended
    outcome: Mapped[Optional[str]] = mapped_column(String(12))  # answered | unanswered, once ended
    customer_email: Mapped[str] = mapped_column(String(254))
    customer_name: Mapped[Optional[str]] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64))       # sha256 of the customer's chat token
    subject: Mapped[str] = mapped_column(String(200))
    language: Mapped[Optional[str]] = mapped_column(String(2))
    agent: Mapped[Optional[str]] = mapped_column(String(100))
    agent_viewer: Mapped[Optional[dict]] = mapped_column(JSON)  # who to post the agent's messages as
    ticket_number: Mapped[Optional[str]] = mapped_column(String(40))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    transcribing_until: Mapped[Optional[object]] = mapped_column(UtcDateTime)  # one transcriber at a time
    started_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    answered_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)
    ended_at: Mapped[Optional[object]] = mapped_column(UtcDateTime)


class ChatEntry(Base):
    """One entry of a chat's timeline, numbered per chat: a message, an agent joining, the end.
    ``in_ticket`` turns true once a message is on the chat's ticket (the transcript)."""

    __tablename__ = "chat_entries"
    __table_args__ = (
        UniqueConstraint("chat_id", "seq", name="uq_chat_entries_chat_seq"),
        Index("ix_chat_entries_pending", "in_ticket", "chat_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(ForeignKey("chat_sessions.id"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))             # message | joined | ended
    author: Mapped[str] = mapped_column(String(254))
    author_role: Mapped[str] = mapped_column(String(20))
    body: Mapped[Optional[str]] = mapped_column(Text)
    at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    in_ticket: Mapped[bool] = mapped_column(Boolean, default=False)
