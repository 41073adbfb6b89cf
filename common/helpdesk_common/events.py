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

from .contracts import analytics, audit, chat, contacts, intake, kb, organisations, routing, surveys, tickets

SPECVERSION = "1.0"


@dataclass(frozen=True)
class EventType:
    """One entry of the catalogue: who emits it, what its data looks like, and what it means."""

    name: str
    source: str
    data_model: type[BaseModel]
    description: str
    schema_version: int = 1


CATALOGUE = {entry.name: entry for entry in [
    # tickets
    EventType("ticket_created", "tickets", tickets.TicketCreated,
              "A ticket was opened, on any channel. Carries the whole ticket."),
    EventType("ticket_updated", "tickets", tickets.TicketUpdated,
              "Fields of a ticket changed (status, priority, assignee, team, tags, custom fields, ...). Carries "
              "the ticket after the change and the list of changes."),
    EventType("status_changed", "tickets", tickets.StatusChanged,
              "A ticket moved through its workflow (also announced in ticket_updated)."),
    EventType("message_added", "tickets", tickets.MessageAdded,
              "A public reply or an internal note was added. Consumers that talk to customers must only ever "
              "use messages whose visibility is public."),
    EventType("sla_warning", "tickets", tickets.SlaWarning,
              "An SLA clock (first response or resolution) passed its warning threshold, in business time."),
    EventType("sla_breached", "tickets", tickets.SlaBreached,
              "An SLA clock passed its target, in business time; routing may escalate the ticket."),
    EventType("contact_created", "tickets", contacts.ContactCreated,
              "A contact was created: through the contacts API, or by intake meeting a sender unknown by every "
              "identifier. Carries the contact with its identifiers."),
    EventType("contact_updated", "tickets", contacts.ContactUpdated,
              "An identifier was added to or removed from a contact (changes: field ``identifiers``, old and "
              "new lists). Carries the contact after the change."),
    EventType("contact_merged", "tickets", contacts.ContactMerged,
              "Two contacts were found to be one person: ``merged_contact_id`` was merged into ``contact`` "
              "(identifiers and tickets moved) and no longer exists."),
    EventType("contact_erased", "tickets", contacts.ContactErased,
              "A contact's personal data was erased on request: the contact keeps only its id, its tickets only "
              "what reports count (status, channel, priority, team, times). Every service holding personal "
              "data about this person (its addresses, numbers, handles, or its tickets' content) erases it on "
              "this event; integrators should do the same."),
    EventType("organisation_created", "tickets", organisations.OrganisationCreated,
              "An admin created a customer organisation (name, email domains, whether its members see each "
              "other's tickets); contacts whose primary address is at one of its domains joined it."),
    EventType("organisation_updated", "tickets", organisations.OrganisationUpdated,
              "An organisation's name, domains or sharing changed, or contacts joined or left it (changes: "
              "field ``members``, old: the contact ids that left, new: those that joined). Carries the "
              "organisation after the change."),
    EventType("tickets_linked", "tickets", tickets.TicketsLinked,
              "An agent linked two tickets as related; both show the link (GET /api/v1/tickets/{number}/links)."),
    EventType("ticket_merged", "tickets", tickets.TicketMerged,
              "A duplicate ticket was merged into another: the duplicate is closed with ``merged_into`` pointing to "
              "the survivor, its customer's messages are copied to the survivor as internal notes, and both "
              "histories record it (ticket_updated and status_changed follow for the closed one)."),
    EventType("ticket_presence_changed", "tickets", tickets.TicketPresenceChanged,
              "An agent opened or closed a ticket in the workspace, or started or stopped typing a reply to it "
              "(collision warnings). Not repeated while nothing changes."),
    EventType("agents_notified", "tickets", tickets.AgentsNotified,
              "Agents got a notification (mentioned in an internal note, or a ticket they follow changed); each "
              "reads theirs at GET /api/v1/notifications."),
    # routing
    EventType("ticket_assigned", "routing", routing.TicketAssigned,
              "A ticket was assigned (or reassigned) to an agent, by a routing rule, from the team queue, or by "
              "hand (``manual``; also a change of team or tier set by hand while the agent keeps it). The "
              "tickets service sets assignee, team, tier and priority from it, in ``sequence`` order. Version "
              "2: ``agent`` is null when the assignee set by hand is not one of routing's agents.",
              schema_version=2),
    EventType("ticket_queued", "routing", routing.TicketQueued,
              "No agent of the chosen team and tier could take the ticket now, or a person unassigned it: it "
              "waits in the team queue and is assigned, in priority and age order, as soon as an agent frees "
              "up."),
    EventType("ticket_escalated", "routing", routing.TicketEscalated,
              "A ticket moved up its escalation path (next tier or another team), by an agent or automatically "
              "(SLA breach, urgent priority, repeated reopening); followed by ticket_assigned or ticket_queued."),
    # intake
    EventType("message_received", "intake", intake.MessageReceived,
              "A customer's message arrived on a channel (email, web form, phone, social) and opened a ticket "
              "(created_ticket true) or was appended to one. Auto-replies and bounces never are."),
    EventType("message_quarantined", "intake", intake.MessageQuarantined,
              "An inbound message could not be turned into a ticket; it is kept whole for an operator to "
              "inspect and retry (GET /api/v1/intake/quarantine)."),
    EventType("email_sent", "intake", intake.EmailSent,
              "Mail to a customer (acknowledgement, public reply, status update) was accepted by the SMTP "
              "server."),
    EventType("social_reply_queued", "intake", intake.SocialReply,
              "A public reply on a ticket that came in through the social webhook is to go out to the social "
              "connector (HELPDESK_SOCIAL_CONNECTOR_URL); intake delivers it, retrying with backoff, and parks "
              "it for an operator after repeated failure. Internal notes never are."),
    EventType("social_reply_sent", "intake", intake.SocialReplySent,
              "The social connector accepted a public reply (a 2xx answer to the signed outbound webhook)."),
    EventType("chat_started", "intake", chat.ChatEvent,
              "A customer started a live chat; it waits for an agent. Carries the chat and its first message "
              "(entry 1)."),
    EventType("chat_message_posted", "intake", chat.ChatEvent,
              "The customer or the agent posted in a live chat. Carries the chat and the message entry."),
    EventType("chat_answered", "intake", chat.ChatEvent,
              "An agent joined a waiting chat; its ticket (channel chat) exists from now on."),
    EventType("chat_ended", "intake", chat.ChatEvent,
              "A chat ended (customer left, agent closed it, or nobody answered in time). Outcome unanswered: "
              "it became an ordinary ticket, routed as any other."),
    # kb_search
    EventType("article_published", "kb_search", kb.ArticlePublished,
              "A knowledge-base article became published (created so, or moved from draft or archived). Carries "
              "the whole article."),
    EventType("article_updated", "kb_search", kb.ArticleUpdated,
              "Fields of an article changed (any status). Carries the article after the change and the list of "
              "changes; an article whose visibility is internal must never reach customers."),
    EventType("article_archived", "kb_search", kb.ArticleArchived,
              "An article was archived, or deleted (``deleted`` true); it no longer shows in search."),
    EventType("suggestion_shown", "kb_search", kb.SuggestionShown,
              "Articles were suggested: to a customer typing a request in the portal (context portal) or "
              "attached to a new ticket for the agent (context ticket). Carries no typed text."),
    EventType("suggestion_opened", "kb_search", kb.SuggestionOpened,
              "A suggested article was opened; with suggestion_shown, the basis of deflection figures."),
    EventType("suggestion_deflected", "kb_search", kb.SuggestionDeflected,
              "A portal visitor said the suggested articles answered their question and gave up submitting a "
              "ticket (at most once per suggestion); with suggestion_shown, the basis of deflection rates."),
    # surveys
    EventType("csat_submitted", "surveys", surveys.CsatSubmitted,
              "A customer rated a ticket 1-5 (CSAT), with an optional comment. A later answer to the same survey "
              "replaces the earlier one (``replaces``): count the latest answer per ``survey_id``."),
    EventType("nps_submitted", "surveys", surveys.NpsSubmitted,
              "A customer answered the periodic NPS survey, 0-10 and why. A later answer to the same survey "
              "replaces the earlier one (``replaces``)."),
    # analytics
    EventType("spike_detected", "analytics", analytics.SpikeDetected,
              "Proactive problem detection: the rate of new tickets of one category, team, channel or wording in "
              "the last window is far above its usual level for that hour of the week (the statistics: "
              "services/analytics/README.md). Carries the tickets involved; an agent may turn them into one "
              "problem (POST /api/v1/problems). Announced once per surge and window."),
    # gateway
    EventType("audit_recorded", "gateway", audit.AuditRecorded,
              "An administrative change was made (through the API by an admin token or person, or with the "
              "operator's command): who, when, what. The same entry is readable at GET /api/v1/audit."),
    EventType("account_changed", "gateway", audit.AccountChanged,
              "A person's workspace account was created or changed: the account as it is now (email, name, role, "
              "language, disabled), the latest ``changed_at`` winning. The gateway owns accounts; analytics keeps "
              "the supervisors' and admins' addresses from these for its weekly summary mail."),
]}
"""Every event type, by the service that emits it. Each one's data model lives beside the other contracts of
its source (``helpdesk_common.contracts.<source>``); the AsyncAPI document is generated from this
(``helpdesk-events``, ``docs/events.asyncapi.json``)."""


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
