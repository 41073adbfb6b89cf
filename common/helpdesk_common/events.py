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

SPECVERSION = "1.0"


class TicketCreated(View):
    ticket: TicketView


class TicketUpdated(View):
    ticket: TicketView
    changes: list[Change]


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
