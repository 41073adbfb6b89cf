"""Public replies on social tickets go back out to the social connector. No nameko here.

1. :func:`queue_reply` runs in the ``message_added`` handler's transaction: a public reply by an agent or
   admin, or what the platform itself says to the customer (``domain.chat.platform_says``: the satisfaction
   survey's link), on a ticket that came in through the social webhook stages ``social_reply_queued`` in
   intake's outbox (internal notes, the customer's own messages and what came in on the channel never are).
2. The service's reliable handler of that event calls :func:`deliver_once`: a POST of the reply to
   ``HELPDESK_SOCIAL_CONNECTOR_URL``, signed like the inbound webhooks (:mod:`helpdesk_common.webhooks`)
   with ``HELPDESK_SOCIAL_CONNECTOR_SECRET``, with the event id as ``X-Helpdesk-Delivery``. A failure
   raises: the handler retries with backoff and, after the last attempt, parks the event on
   ``helpdesk.parked`` (``helpdesk-parked list`` / ``replay``). A 4xx refusal is parked at once.
3. After a 2xx it records the event as delivered and stages ``social_reply_sent``.

Delivery is at least once: a process that dies between the connector's 2xx and the record posts again
with the same ``X-Helpdesk-Delivery``, which the connector uses to drop the repeat.
"""
import json
import logging
import ssl
import urllib.error

from sqlalchemy import select

from helpdesk_common import outbound
from helpdesk_common.inbox import first_delivery
from helpdesk_common.errors import HelpdeskError
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage
from helpdesk_common.webhooks import DELIVERY_HEADER, signed_headers

from .domain.chat import platform_says
from .models import Outbox, ProcessedEvent, SocialThread

log = logging.getLogger(__name__)

STAFF_AUTHORS = ("agent", "admin")
HANDLER = "intake.deliver_social_reply"
RETRYABLE_STATUSES = (408, 425, 429)


class ConnectorUnavailable(Exception):
    """The connector could not be reached or answered 5xx/408/429: worth another attempt."""


class ConnectorRefused(HelpdeskError):
    """The connector refused the reply (4xx): no retry will change that; parked for an operator."""

    status = 502
    default_code = "social_connector_refused"


def queue_reply(session, settings, ticket, message):
    """Stage ``social_reply_queued`` for a public staff reply on a social ticket; returns the envelope or None."""
    if (ticket.get("channel") != "social" or message.get("visibility") != "public"
            or (message.get("author_role") not in STAFF_AUTHORS and not platform_says(message))):
        return None
    if not settings.social_connector_url:
        log.info("no social connector configured: reply %s on %s stays in the helpdesk", message.get("id"),
                 ticket["number"])
        return None
    thread = session.scalars(select(SocialThread).where(SocialThread.ticket_number == ticket["number"])
                             .order_by(SocialThread.created_at.desc()).limit(1)).first()
    if thread is None:
        log.warning("social ticket %s has no known thread; reply %s not sent out", ticket["number"], message.get("id"))
        return None
    envelope = new_event("social_reply_queued", {
        "ticket_number": ticket["number"], "message_id": message["id"], "platform": thread.platform,
        "thread_id": thread.thread_id, "handle": thread.handle, "text": message["body"],
        "author": message["author"], "replied_at": message["created_at"]}, subject=ticket["number"])
    stage(session, Outbox, envelope)
    return envelope


def post(settings, delivery_id, reply):
    """POST ``reply`` (the event's data) to the connector, signed; returns the HTTP status of a 2xx.

    Through :mod:`helpdesk_common.outbound`: no redirect followed (it would carry the signature elsewhere),
    internal targets only when ``SOCIAL_CONNECTOR_ALLOW_INTERNAL`` says so, the answer read up to a bound."""
    body = json.dumps({"delivery_id": delivery_id, **reply}, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery_id,
               **signed_headers(settings.social_connector_secret, body)}
    context = ssl.create_default_context(cafile=settings.tls_ca_file) if settings.tls_ca_file else None
    try:
        status, _ = outbound.post(settings.social_connector_url, body, headers, context=context,
                                  timeout=settings.social_connector_timeout,
                                  allow_internal=settings.social_connector_allow_internal)
        return status
    except outbound.OutboundRefused as error:
        raise ConnectorRefused(f"The social connector's address is refused: {error}",
                               code="social_connector_address_refused") from None
    except urllib.error.HTTPError as error:
        detail = error.read(500).decode("utf-8", "replace")
        if 300 <= error.code < 400:
            raise ConnectorRefused(f"The social connector answered a redirect (HTTP {error.code} to "
                                   f"{error.headers.get('Location')!r}); redirects are not followed: configure "
                                   "its final address", code="social_connector_redirect") from None
        if 400 <= error.code < 500 and error.code not in RETRYABLE_STATUSES:
            raise ConnectorRefused(f"The social connector refused the reply: HTTP {error.code} {detail}") from None
        raise ConnectorUnavailable(f"HTTP {error.code} {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise ConnectorUnavailable(f"{type(error).__name__}: {getattr(error, 'reason', error)}") from None


def deliver_once(sessions, settings, event):
    """Send the reply of a ``social_reply_queued`` event unless it was delivered already; raises on failure."""
    with sessions() as session:
        if session.get(ProcessedEvent, (event["id"], HANDLER)) is not None:
            return None
    status = post(settings, event["id"], event["data"])
    data = event["data"]
    with sessions.begin() as session:
        if first_delivery(session, ProcessedEvent, event["id"], HANDLER):
            stage(session, Outbox, new_event("social_reply_sent", {
                "ticket_number": data["ticket_number"], "message_id": data["message_id"],
                "platform": data["platform"], "thread_id": data["thread_id"], "delivery_id": event["id"],
                "status": status}, subject=data["ticket_number"], correlation_id=event.get("correlation_id")))
    return status
