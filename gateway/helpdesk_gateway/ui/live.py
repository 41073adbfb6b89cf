"""The live ticket list: server-sent events from the tickets event stream, as the chat stream does.

One subscription per gateway process (``TicketFeed``, a :class:`helpdesk_gateway.fanout.EventFeed` like
the chat streams' one: an exclusive queue bound to ``tickets.events``) keeps the last few thousand changed ticket numbers with
a sequence; each open stream waits on it and, for every change, asks the tickets service whether this
person may see the ticket (``get_ticket`` with their viewer) before saying anything. So an agent limited
to teams never hears of another team's ticket: the service judges, exactly as for the list itself.

The event only says "ticket HD-… changed"; the page then fetches its rows (htmx), so nothing in the
stream can show more than the list would.
"""
import json
import logging
import os
import time
from collections import deque

from flask import Response, current_app, request, stream_with_context

from helpdesk_common.errors import HelpdeskError

from ..api.tickets import read_ticket
from ..fanout import EventFeed
from ..ratelimits import client_address
from ..streams import open_stream

log = logging.getLogger(__name__)

TICKET_EVENTS = ("ticket_created", "ticket_updated", "message_added")


class TicketFeed(EventFeed):
    """This process's one subscription to ticket changes: a numbered log that streams wait on."""

    source = "tickets"
    event_types = TICKET_EVENTS
    unavailable = "The live ticket feed is not available; retry shortly."

    def __init__(self, amqp_uri, keep=5000):
        super().__init__(amqp_uri)
        self._log = deque(maxlen=keep)  # (seq, ticket number)
        self._seq = 0

    @property
    def seq(self):
        return self._seq

    def on_event(self, envelope):
        number = envelope["data"]["ticket"]["number"]
        self._seq += 1
        self._log.append((self._seq, number))

    def since(self, after, timeout):
        """The ticket numbers changed after ``after`` (deduplicated) and the new cursor; waits up to
        ``timeout`` for the first one."""
        with self._changed:
            self._changed.wait_for(lambda: self._seq > after, timeout)
            numbers = list(dict.fromkeys(number for seq, number in self._log if seq > after))
            return numbers, self._seq


def _feed():
    feed = current_app.extensions.get("helpdesk.ticket_feed")
    if feed is None:
        feed = current_app.extensions.setdefault(
            "helpdesk.ticket_feed", TicketFeed(current_app.config["HELPDESK_SETTINGS"].amqp_uri))
    return feed


def _visible(number):
    try:
        read_ticket(number)
        return True
    except HelpdeskError:
        return False  # not found for this person (another team's), or the service is busy: say nothing


def stream(only=None):
    """``text/event-stream`` of ``ticket`` events (``data``: {"number": ...}) for tickets this person may
    see (``only``, or ``?ticket=``: one ticket only, the open ticket page, the workspace's or the portal's);
    comments as keep-alives; closes after a few minutes (EventSource reconnects)."""
    only = only or request.args.get("ticket") or None
    if only is not None:
        read_ticket(only)  # the ticket's own 404 for a person who may not see it, before the stream starts
    feed = _feed()
    feed.start()
    keepalive = float(os.environ.get("HELPDESK_LIVE_KEEPALIVE") or 15)
    lifetime = float(os.environ.get("HELPDESK_LIVE_STREAM_SECONDS") or 300)
    reconnected = request.headers.get("Last-Event-ID") is not None

    def events():
        cursor = feed.seq  # only what changes from now on: the page was rendered just before
        deadline = time.monotonic() + lifetime
        yield "retry: 2000\n\n"
        if reconnected:  # changes while the stream was down are not replayed: refresh the list once
            yield f"id: {cursor}\nevent: ticket\ndata: {{}}\n\n"
        while time.monotonic() < deadline:
            numbers, cursor = feed.since(cursor, keepalive)
            sent = False
            for number in numbers:
                if (only is None or number == only) and _visible(number):
                    yield f"id: {cursor}\nevent: ticket\ndata: {json.dumps({'number': number})}\n\n"
                    sent = True
            if not sent:
                yield ": keep-alive\n\n"

    # stream_with_context: the viewer (g.identity) and the RPC pool are needed while the stream runs.
    return open_stream(current_app, Response(stream_with_context(events()), mimetype="text/event-stream",
                                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}),
                       client_address())

