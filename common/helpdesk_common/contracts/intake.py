"""Contracts of the intake service: what the channels send in, and the views and events it answers with."""
from datetime import datetime
from typing import Annotated, Any, Literal, Optional

from pydantic import Field, StringConstraints

from ..errors import HelpdeskError
from . import Contract, EmailAddress, View
from .tickets import FieldName, LongText, Name, Priority, Requester, ShortText, Tag

Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class UploadedFile(Contract):
    """A file sent with a web form, base64-encoded."""

    filename: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    content_type: Annotated[str, StringConstraints(min_length=3, max_length=100,
                                                   pattern=r"^[\w.+-]+/[\w.+-]+$")] = "application/octet-stream"
    content_base64: Annotated[str, StringConstraints(max_length=20_000_000)]


class WebForm(Contract):
    """A request submitted through the customer portal's form."""

    subject: ShortText
    description: LongText
    requester: Requester
    priority: Priority = "normal"
    language: Optional[Language] = None
    category: Optional[Name] = None
    team: Optional[Name] = None
    tags: Annotated[list[Tag], Field(max_length=50)] = []
    custom_fields: dict[FieldName, Any] = {}
    attachments: Annotated[list[UploadedFile], Field(max_length=10)] = []
    submission_id: Optional[ExternalId] = None
    """Set by the form (one per rendered form): a double submission then makes one ticket."""


class WebReply(Contract):
    """A customer's reply to their own ticket with files, as the portal's reply form sends it."""

    body: LongText
    attachments: Annotated[list[UploadedFile], Field(min_length=1, max_length=10)]
    reply_id: Optional[ExternalId] = None
    """Set by the form (one per rendered form): a double submission then makes one message."""


class PhoneCall(Contract):
    """A call record posted by the call-centre system."""

    call_id: ExternalId
    caller_number: Annotated[str, StringConstraints(min_length=3, max_length=40, pattern=r"^\+?[0-9 ()./-]+$")]
    caller_email: Optional[EmailAddress] = None
    caller_name: Optional[Annotated[str, StringConstraints(max_length=200)]] = None
    agent: Optional[Name] = None
    direction: Literal["inbound", "outbound"] = "inbound"
    duration_seconds: Annotated[int, Field(ge=0, le=86_400)] = 0
    notes: Optional[LongText] = None
    recording_url: Optional[Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://")]] = None
    ticket_number: Optional[Annotated[str, StringConstraints(min_length=1, max_length=40)]] = None
    started_at: Optional[datetime] = None
    language: Optional[Language] = None


class SocialMessage(Contract):
    """A message posted by a social-media connector."""

    platform: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,29}$")]
    message_id: ExternalId
    thread_id: ExternalId
    handle: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    name: Optional[Annotated[str, StringConstraints(max_length=200)]] = None
    email: Optional[EmailAddress] = None
    text: LongText
    url: Optional[Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://")]] = None
    language: Optional[Language] = None


class QuarantineQuery(Contract):
    status: Optional[Literal["held", "resolved", "discarded"]] = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class QuarantineRetry(Contract):
    """Options of a retry: ``trust_sender`` vouches for a sender the receiving server did not (an
    unauthenticated reply is then added to its ticket)."""

    trust_sender: bool = False


class OutgoingQuery(Contract):
    status: Optional[Literal["pending", "sent", "failed"]] = None
    ticket_number: Optional[Annotated[str, StringConstraints(max_length=40)]] = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class AccountMail(Contract):
    """A mail about a person's account (a password-reset or invitation link), written by the gateway in the
    person's language and sent through intake's outgoing-mail queue like every other mail."""

    to: EmailAddress
    name: Optional[Annotated[str, StringConstraints(max_length=200)]] = None
    subject: ShortText
    body: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    language: Language = "en"


class IntakeResult(View):
    """What a channel submission became."""

    ticket_number: str
    created: bool
    """False: appended to an existing ticket, or a repeat of a submission already taken."""
    duplicate: bool = False


class QuarantinedView(View):
    id: int
    channel: str
    mailbox: Optional[str] = None
    reason: str
    status: str
    size: int
    sha256: str
    subject: Optional[str] = None
    sender: Optional[str] = None
    attempts: int
    ticket_number: Optional[str] = None
    created_at: datetime
    retried_at: Optional[datetime] = None
    code: Optional[str] = None
    """Why, stably: unparseable, too_large, parse_failed, unauthenticated, refused."""
    headers_only: bool = False
    """Over the size limit: only the headers were fetched (the body is still on the mail server)."""
    decided_by: Optional[str] = None
    decided_at: Optional[datetime] = None


class QuarantinedPart(View):
    content_type: str
    filename: Optional[str] = None
    size: int


class QuarantinedDetail(QuarantinedView):
    """A quarantined message as an operator reads it."""

    headers: list[list[str]]
    """``[name, value]`` of its first 200 headers, unfolded, each value at most 2,000 characters."""
    parts: list[QuarantinedPart]
    text: Optional[str] = None
    """The text that could be read (parsed within the time budget), or None."""
    parse_error: Optional[str] = None


class QuarantinedRaw(View):
    """A quarantined message's bytes as they came, base64 (only its headers when ``headers_only``)."""

    id: int
    filename: str
    headers_only: bool
    data: str


class OutgoingMailView(View):
    id: int
    kind: str
    ticket_number: str
    to: str
    subject: str
    message_id: str
    status: str
    attempts: int
    last_error: Optional[str] = None
    next_attempt_at: Optional[datetime] = None
    created_at: datetime
    sent_at: Optional[datetime] = None


class AttachmentView(View):
    id: int
    ticket_number: str
    filename: str
    content_type: str
    size: int
    sha256: str
    inline: bool = False
    content_id: Optional[str] = None
    message_ref: Optional[str] = None
    """The inbound message it came with (Message-ID, or the channel's id)."""


class ChannelsView(View):
    mailboxes: list[dict]
    smtp: Optional[dict] = None
    support_address: str
    ticket_number_pattern: str
    closed_ticket_rule: str
    languages: list[str]


# --- event data ------------------------------------------------------------------------------------

class MessageReceived(View):
    channel: str
    ticket_number: str
    created_ticket: bool
    """True: the message opened the ticket; False: it was appended to it."""
    message_ref: Optional[str] = None
    """Message-ID of an email, or the channel's own id of the message."""
    sender: str
    subject: Optional[str] = None
    mailbox: Optional[str] = None
    team: Optional[str] = None
    attachments: list[AttachmentView] = []
    follows: Optional[str] = None
    """The closed ticket this new one continues, when a reply to a closed ticket opened it."""


class MessageQuarantined(View):
    quarantine_id: int
    channel: str
    mailbox: Optional[str] = None
    reason: str
    sha256: str
    code: Optional[str] = None


class EmailSent(View):
    mail_id: int
    kind: Literal["acknowledgement", "reply", "status", "account"]
    ticket_number: str
    to: str
    message_id: str
    attempts: int


class SocialReply(View):
    """A public reply on a social ticket, as it goes out to the social connector (the webhook's body,
    minus ``delivery_id``, which is the event's id)."""

    ticket_number: str
    message_id: int
    platform: str
    thread_id: str
    handle: str
    text: str
    author: str
    replied_at: datetime


class SocialReplySent(View):
    ticket_number: str
    message_id: int
    platform: str
    thread_id: str
    delivery_id: str
    """The ``social_reply_queued`` event's id, sent as ``X-Helpdesk-Delivery``: the same on every retry."""
    status: int
    """The connector's HTTP status."""


# --- errors intake's callers act on (registered with nameko, so the gateway gets these classes back) ---

class RateLimited(HelpdeskError):
    status = 429
    default_code = "rate_limited"


class TooLarge(HelpdeskError):
    status = 413
    default_code = "payload_too_large"
