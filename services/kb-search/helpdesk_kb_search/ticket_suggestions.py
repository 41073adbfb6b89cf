"""Suggesting articles to the agents of new tickets (``ticket_created``), many tickets per transaction.

Each new ticket is searched on its own (its subject and description, in its language, internal articles
included: the suggestions are for its agents), but the tickets whose events arrive together are recorded
in one transaction: their idempotency keys, their suggestions and their ``suggestion_shown`` events, with
one insert each (group commit, :mod:`helpdesk_common.group_commit`). A ticket's suggestion is recorded
even when nothing matched, so "none found" differs from "not handled yet".

Idempotency stays per event: an event already handled (a redelivery) is neither searched nor recorded
again, and a twin delivery in the same batch is recorded once.
"""
from sqlalchemy import select

from helpdesk_common.inbox import first_deliveries, first_delivery
from helpdesk_common.contracts import validate
from helpdesk_common.contracts.kb import SuggestRequest, Viewer
from helpdesk_common.database import run_in_transaction

from . import domain, search
from .models import ProcessedEvent

HANDLER = "suggest_for_ticket"  # the processed-events key, as before batching: redeliveries stay recognised
TICKET_SUGGESTIONS = 5
TICKET_LANGUAGES = ("en", "nl", "sv")


def request_for(envelope):
    """The suggestion request and the viewer (the system, for the ticket's agents) of a ``ticket_created``
    event; raises ``ValidationFailed`` (or ``KeyError``/``TypeError``) for an event that is not one."""
    ticket = envelope["data"]["ticket"]
    lang = ticket.get("language") if ticket.get("language") in TICKET_LANGUAGES else "en"
    request = validate(SuggestRequest, {
        "text": f"{ticket['subject']}\n{ticket['description']}"[:5000], "lang": lang,
        "size": TICKET_SUGGESTIONS, "context": "ticket", "ticket_number": ticket["number"]})
    system = Viewer(actor="kb_search", role="system", correlation_id=envelope.get("correlation_id"))
    return request, system


def suggest_for_tickets(sessions, backend, envelopes):
    """Suggest articles to the new tickets of ``envelopes`` (``ticket_created`` events) in one transaction.

    Returns, per envelope and in order, the suggestion's id, or None for an event already handled (or a
    twin of one earlier in the list). Raises when any event is malformed or the write fails: nothing of
    the batch is then recorded, and the caller reruns the events one by one (:func:`suggest_for_ticket`).
    """
    ids = [envelope["id"] for envelope in envelopes]
    with sessions() as session:  # redeliveries: skip their searches too
        handled = set(session.scalars(select(ProcessedEvent.event_id).where(
            ProcessedEvent.event_id.in_(set(ids)), ProcessedEvent.handler == HANDLER)))
    todo = {envelope["id"]: envelope for envelope in envelopes if envelope["id"] not in handled}
    # Every event is checked before any search: a malformed one fails the batch before work is spent.
    requests = {event_id: request_for(envelope) for event_id, envelope in todo.items()}
    found = {event_id: search.suggest(backend, request, viewer) for event_id, (request, viewer) in requests.items()}

    def record(session):
        # Again in the transaction: a concurrent replica may have handled some meanwhile.
        first = first_deliveries(session, ProcessedEvent, list(todo), HANDLER)
        fresh = [event_id for event_id in todo if event_id in first]
        shown = domain.ticket_suggestions_shown(session, [(*requests[e], found[e]) for e in fresh])
        return dict(zip(fresh, shown))

    recorded = run_in_transaction(sessions, record)
    return [recorded.pop(event_id, None) for event_id in ids]


def suggest_for_ticket(sessions, backend, envelope):
    """Suggest articles to one new ticket, alone in its transaction (a batch that failed is rerun event by
    event, so a bad event fails only itself). Returns the suggestion's id, None for a repeat."""
    with sessions() as session:  # a redelivery: skip the search too
        if session.get(ProcessedEvent, (envelope["id"], HANDLER)) is not None:
            return None
    request, viewer = request_for(envelope)
    items = search.suggest(backend, request, viewer)

    def record(session):  # a concurrent repeat fails on the key, and the rerun finds it recorded
        if first_delivery(session, ProcessedEvent, envelope["id"], HANDLER):
            return domain.ticket_suggestions_shown(session, [(request, viewer, items)])[0]
        return None

    return run_in_transaction(sessions, record)
