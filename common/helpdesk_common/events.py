"""The event envelope and the catalogue of event types: the single source of truth for the stream.

Every event on the bus is one envelope (CloudEvents attribute names)::

    {"id": "<uuid>", "type": "ticket_created", "source": "tickets", "time": "2026-11-22T12:00:00+00:00",
     "specversion": "1.0", "schema_version": 1, "correlation_id": "...", "subject": "HD-000042",
     "datacontenttype": "application/json", "data": {...}}

It travels on the topic exchange ``<source>.events`` with the event type as routing key, the layout
nameko's own ``EventDispatcher``/``event_handler`` use, so nameko services and plain AMQP clients
subscribe alike. Adding a field to ``data`` is compatible; a breaking change bumps ``schema_version``.
"""
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from pydantic import BaseModel

from .contracts import View
from .contracts.tickets import Change, MessageView, TicketView
from .contracts.kb import ArticleView
from .contracts.intake import EmailSent, MessageQuarantined, MessageReceived, SocialReply, SocialReplySent
from .contracts.chat import ChatEvent

SPECVERSION = "1.0"


class TicketCreated(View):
    ticket: TicketView


class TicketUpdated(View):
    ticket: TicketView
    changes: list[Change]
    # Who changed it: an agent or admin, or a service ("routing" for its decisions, "sla", "system").
    # Lets a service tell its own decision echoed back from a change made by someone else.
    actor: Optional[str] = None


class StatusChanged(View):
    ticket: TicketView
    from_status: str
    to_status: str


class MessageAdded(View):
    ticket: TicketView
    message: MessageView


class ArticlePublished(View):
    article: ArticleView


class ArticleUpdated(View):
    article: ArticleView
    changes: list[Change]


class ArticleArchived(View):
    article: ArticleView
    deleted: bool = False


class SuggestionShown(View):
    suggestion_id: str
    context: str
    language: str
    query_length: int
    article_ids: list[int]
    ticket_number: Optional[str] = None


class SuggestionOpened(View):
    suggestion_id: str
    article_id: int
    position: Optional[int] = None


@dataclass(frozen=True)
class EventType:
    """One entry of the catalogue: who emits it, what its data looks like, and what it means."""

    name: str
    source: str
    data_model: type[BaseModel]
    description: str
    schema_version: int = 1


CATALOGUE = {
    event.name: event
    for event in [
        EventType("ticket_created", "tickets", TicketCreated,
                  "A ticket was opened, on any channel. Carries the whole ticket."),
        EventType("ticket_updated", "tickets", TicketUpdated,
                  "Fields of a ticket changed (status, priority, assignee, team, tags, custom fields, ...). "
                  "Carries the ticket after the change and the list of changes."),
        EventType("status_changed", "tickets", StatusChanged,
                  "A ticket moved through its workflow (also announced in ticket_updated)."),
        EventType("message_added", "tickets", MessageAdded,
                  "A public reply or an internal note was added. Consumers that talk to customers "
                  "must only ever use messages whose visibility is public."),
        EventType("article_published", "kb_search", ArticlePublished,
                  "A knowledge-base article became published (created so, or moved from draft or archived). "
                  "Carries the whole article."),
        EventType("article_updated", "kb_search", ArticleUpdated,
                  "Fields of an article changed (any status). Carries the article after the change and the "
                  "list of changes; an article whose visibility is internal must never reach customers."),
        EventType("article_archived", "kb_search", ArticleArchived,
                  "An article was archived, or deleted (``deleted`` true); it no longer shows in search."),
        EventType("suggestion_shown", "kb_search", SuggestionShown,
                  "Articles were suggested: to a customer typing a request in the portal (context portal) "
                  "or attached to a new ticket for the agent (context ticket). Carries no typed text."),
        EventType("suggestion_opened", "kb_search", SuggestionOpened,
                  "A suggested article was opened; with suggestion_shown, the basis of deflection figures."),
        EventType("message_received", "intake", MessageReceived,
                  "A customer's message arrived on a channel (email, web form, phone, social) and opened a "
                  "ticket (created_ticket true) or was appended to one. Auto-replies and bounces never are."),
        EventType("social_reply_queued", "intake", SocialReply,
                  "A public reply on a ticket that came in through the social webhook is to go out to the social "
                  "connector (HELPDESK_SOCIAL_CONNECTOR_URL); intake delivers it, retrying with backoff, and parks "
                  "it for an operator after repeated failure. Internal notes never are."),
        EventType("social_reply_sent", "intake", SocialReplySent,
                  "The social connector accepted a public reply (a 2xx answer to the signed outbound webhook)."),
        EventType("message_quarantined", "intake", MessageQuarantined,
                  "An inbound message could not be turned into a ticket; it is kept whole for an operator to "
                  "inspect and retry (GET /api/v1/intake/quarantine)."),
        EventType("chat_started", "intake", ChatEvent,
                  "A customer started a live chat; it waits for an agent. Carries the chat and its first "
                  "message (entry 1)."),
        EventType("chat_message_posted", "intake", ChatEvent,
                  "The customer or the agent posted in a live chat. Carries the chat and the message entry."),
        EventType("chat_answered", "intake", ChatEvent,
                  "An agent joined a waiting chat; its ticket (channel chat) exists from now on."),
        EventType("chat_ended", "intake", ChatEvent,
                  "A chat ended (customer left, agent closed it, or nobody answered in time). Outcome "
                  "unanswered: it became an ordinary ticket, routed as any other."),
        EventType("email_sent", "intake", EmailSent,
                  "Mail to a customer (acknowledgement, public reply, status update) was accepted by the SMTP "
                  "server."),
    ]
}


class UnknownEventType(ValueError):
    pass


def new_event(event_type, data, *, correlation_id=None, subject=None):
    """Build an envelope for ``event_type``, validating ``data`` against the catalogue.

    Validation here catches a producer's mistake before anything is written, rather than in every
    consumer.
    """
    try:
        entry = CATALOGUE[event_type]
    except KeyError:
        raise UnknownEventType(f"{event_type!r} is not in the event catalogue") from None
    payload = entry.data_model.model_validate(data).model_dump(mode="json")
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "source": entry.source,
        "time": datetime.now(timezone.utc).isoformat(),
        "specversion": SPECVERSION,
        "schema_version": entry.schema_version,
        "correlation_id": correlation_id,
        "subject": subject,
        "datacontenttype": "application/json",
        "data": payload,
    }


def exchange_name(source):
    """The topic exchange a service's events are published on (nameko's naming)."""
    return f"{source}.events"


def batch_exchange_name(source):
    """The topic exchange the platform's own handlers take a service's events from, many in a message.

    The same events as on :func:`exchange_name`, relayed in the same confirm round, grouped by type: one
    message per type per relay batch (routing key: the type), body ``{"source", "type", "events": [...]}``.
    A message per event costs the broker storing and delivering each to every queue bound to it; a message
    per batch costs it once per batch (``bench/broker_fanout.py``). Integrators keep the per-event stream;
    this one is internal and may change with the platform."""
    return f"{source}.batches"


def envelope_schema() -> dict:
    """JSON Schema of the envelope, without ``data`` (which each event type defines)."""
    return {
        "type": "object",
        "required": ["id", "type", "source", "time", "specversion", "schema_version", "data"],
        "properties": {
            "id": {"type": "string", "format": "uuid", "description": "Unique; consumers dedupe on it."},
            "type": {"type": "string", "description": "Event type, past tense snake case."},
            "source": {"type": "string", "description": "The producing service."},
            "time": {"type": "string", "format": "date-time", "description": "UTC time of the change."},
            "specversion": {"const": SPECVERSION},
            "schema_version": {"type": "integer", "minimum": 1},
            "correlation_id": {"type": ["string", "null"],
                               "description": "Ties the event to the request that caused it."},
            "subject": {"type": ["string", "null"], "description": "The ticket number, where there is one."},
            "datacontenttype": {"const": "application/json"},
            "data": {"type": "object"},
        },
    }


def event_time(envelope) -> Optional[datetime]:
    """The ``time`` attribute as an aware datetime."""
    value = envelope.get("time")
    return datetime.fromisoformat(value) if value else None


# --- Routing, tiers, SLAs and escalation (issue 4) --------------------------------------------------
# Appended as a block of its own: the entries above stay as they are.

class AgentRef(View):
    id: int
    name: str
    email: str
    assignee: str  # how the ticket names the agent in its ``assignee`` field: "agent-<id>"


class TicketAssigned(View):
    ticket_number: str
    assignee: str
    agent: Optional[AgentRef] = None  # null: an assignee set by hand who is not one of routing's agents
    team: Optional[str] = None
    tier: int = 1
    priority: Optional[str] = None  # the priority after routing (a rule may raise it)
    language: Optional[str] = None  # given with the ticket or detected by routing
    reason: str
    rule: Optional[str] = None
    manual: bool = False
    previous_assignee: Optional[str] = None
    assigned_at: datetime
    sequence: Optional[int] = None  # routing's decisions about one ticket, numbered 1, 2, ... in the order made
    actor: Optional[str] = None  # who decided: "routing", or the person who set it by hand


class TicketQueued(View):
    ticket_number: str
    team: Optional[str] = None
    tier: int = 1
    priority: Optional[str] = None
    language: Optional[str] = None
    required_skills: dict[str, int] = {}
    reason: str
    rule: Optional[str] = None
    previous_assignee: Optional[str] = None
    queued_at: datetime
    sequence: Optional[int] = None
    actor: Optional[str] = None


class TicketEscalated(View):
    ticket_number: str
    from_team: Optional[str] = None
    to_team: Optional[str] = None
    from_tier: int
    to_tier: int
    trigger: str  # manual | sla_breach | urgent_priority | reopened
    reason: str
    actor: str
    escalated_at: datetime
    sequence: Optional[int] = None


class SlaClock(View):
    ticket_number: str
    metric: str  # first_response | resolution
    policy: Optional[str] = None
    priority: Optional[str] = None
    team: Optional[str] = None
    tier: int = 1
    target_seconds: int  # business seconds
    elapsed_seconds: float  # business seconds, pauses excluded
    remaining_seconds: float
    due_at: Optional[datetime] = None
    at: datetime


class SlaWarning(SlaClock):
    threshold: float  # the fraction of the target elapsed that triggers the warning


class SlaBreached(SlaClock):
    pass


for _entry in [
    EventType("ticket_assigned", "routing", TicketAssigned,
              "A ticket was assigned (or reassigned) to an agent, by a routing rule, from the team queue, "
              "or by hand (``manual``; also a change of team or tier set by hand while the agent keeps it). "
              "The tickets service sets assignee, team, tier and priority from it, in ``sequence`` order. "
              "Version 2: ``agent`` is null when the assignee set by hand is not one of routing's agents.",
              schema_version=2),
    EventType("ticket_queued", "routing", TicketQueued,
              "No agent of the chosen team and tier could take the ticket now, or a person unassigned it: it "
              "waits in the team queue and is assigned, in priority and age order, as soon as an agent frees up."),
    EventType("ticket_escalated", "routing", TicketEscalated,
              "A ticket moved up its escalation path (next tier or another team), by an agent or "
              "automatically (SLA breach, urgent priority, repeated reopening); followed by "
              "ticket_assigned or ticket_queued."),
    EventType("sla_warning", "tickets", SlaWarning,
              "An SLA clock (first response or resolution) passed its warning threshold, in business time."),
    EventType("sla_breached", "tickets", SlaBreached,
              "An SLA clock passed its target, in business time; routing may escalate the ticket."),
]:
    CATALOGUE[_entry.name] = _entry
del _entry


# --- Knowledge base: deflection (issue 5) -----------------------------------------------------------
# Appended as a block of its own: the entries above stay as they are.

class SuggestionDeflected(View):
    suggestion_id: str
    language: str
    article_ids: list[int]  # the articles that were shown, best first
    article_id: Optional[int] = None  # the one that answered the question, when the portal says so
    shown_at: datetime
    deflected_at: datetime


CATALOGUE["suggestion_deflected"] = EventType(
    "suggestion_deflected", "kb_search", SuggestionDeflected,
    "A portal visitor said the suggested articles answered their question and gave up submitting a ticket "
    "(at most once per suggestion); with suggestion_shown, the basis of deflection rates.")


# --- Contacts (issue 3) -----------------------------------------------------------------------------
# A CRM or an identity system mirrors the helpdesk's people from these. Appended as a block of its own.

from .contracts.contacts import ContactView  # noqa: E402  (kept beside the block that uses it)


class ContactCreated(View):
    contact: ContactView


class ContactUpdated(View):
    contact: ContactView
    changes: list[Change]


class ContactMerged(View):
    contact: ContactView  # the contact that remains, after the merge
    merged_contact_id: int  # the contact that was merged into it and no longer exists
    ticket_numbers: list[str]  # the tickets whose requester moved (each also announced as ticket_updated)


for _entry in [
    EventType("contact_created", "tickets", ContactCreated,
              "A contact was created: through the contacts API, or by intake meeting a sender unknown by every "
              "identifier. Carries the contact with its identifiers."),
    EventType("contact_updated", "tickets", ContactUpdated,
              "An identifier was added to or removed from a contact (changes: field ``identifiers``, old and "
              "new lists). Carries the contact after the change."),
    EventType("contact_merged", "tickets", ContactMerged,
              "Two contacts were found to be one person: ``merged_contact_id`` was merged into ``contact`` "
              "(identifiers and tickets moved) and no longer exists."),
]:
    CATALOGUE[_entry.name] = _entry
del _entry
