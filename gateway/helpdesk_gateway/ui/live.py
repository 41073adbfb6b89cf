"""The workspace's one live stream per page: server-sent events from the event stream, as chat does.

Every signed-in workspace page holds exactly one stream, ``GET /workspace/live``, and says what it shows:

- always: ``notifications`` when the tickets service wrote a notification for this person
  (``agents_notified`` names the recipients); the header's badge then fetches its count;
- the ticket list (no argument): ``ticket`` for every created or changed ticket this person may see;
- the ticket page (``?ticket=HD-…``): ``ticket`` for that ticket, and ``presence`` (the collision warning,
  rendered) whenever a colleague opens or closes it or starts or stops typing (``ticket_presence_changed``).
  The stream itself is the page's presence: it says "still here" every ``HELPDESK_PRESENCE_BEAT`` seconds
  (5) on the page's behalf and "gone" when it closes, so the page sends nothing but its typing;
- the chat console (``?chats=1``): ``chats`` when a chat starts waiting, is taken or ends;
- a chat (``?chat=<id>&after=<seq>``): ``entry`` when the chat has a new entry (it takes a slot of the chat,
  as the chat API's stream does);
- any other page (``?only=notifications``): the notifications alone.

One subscription per gateway process (``WorkspaceFeed``, a :class:`helpdesk_gateway.fanout.EventFeed`:
an exclusive queue bound to the ticket and chat events) keeps the last few thousand changes with a
sequence; each stream waits on it. An event only wakes: for each changed ticket the stream asks the
tickets service whether this person may see it (``get_ticket`` with their viewer) before saying anything,
and what a page shows it fetches itself, so the stream never shows more than the page would. An agent
limited to teams never hears of another team's ticket: the service judges, exactly as for the list.
"""
import json
import logging
import os
import time
from collections import deque

from flask import Response, abort, current_app, g, render_template, request, stream_with_context

from helpdesk_common.errors import HelpdeskError

from ..api.presence import say_present
from ..api.tickets import read_ticket
from ..fanout import EventFeed
from ..ratelimits import client_address
from ..streams import open_stream

log = logging.getLogger(__name__)

TICKET_EVENTS = ("ticket_created", "ticket_updated", "message_added")
TICKETS_SOURCE_EVENTS = TICKET_EVENTS + ("ticket_presence_changed", "agents_notified")
CHAT_EVENTS = ("chat_started", "chat_message_posted", "chat_answered", "chat_ended")
CHAT_LIST_EVENTS = ("chat_started", "chat_answered", "chat_ended")  # what changes the waiting list


class WorkspaceFeed(EventFeed):
    """This process's one subscription for the workspace's streams: a numbered log of (kind, key)."""

    source = "tickets"
    event_types = TICKETS_SOURCE_EVENTS
    also = {"intake": CHAT_EVENTS}
    unavailable = "The live workspace feed is not available; retry shortly."

    def __init__(self, amqp_uri, keep=5000):
        super().__init__(amqp_uri)
        self._log = deque(maxlen=keep)  # (seq, kind, key)
        self._seq = 0

    @property
    def seq(self):
        return self._seq

    def _add(self, kind, key):
        self._seq += 1
        self._log.append((self._seq, kind, key))

    def on_event(self, envelope):
        event_type, data = envelope["type"], envelope["data"]
        if event_type in TICKET_EVENTS:
            self._add("ticket", data["ticket"]["number"])
        elif event_type == "ticket_presence_changed":
            self._add("presence", data["ticket_number"])
        elif event_type == "agents_notified":
            self._add("notified", tuple(data["recipients"]))
        elif event_type in CHAT_EVENTS:
            self._add("chat", data["chat"]["id"])
            if event_type in CHAT_LIST_EVENTS:
                self._add("chats", None)

    def since(self, after, timeout):
        """The changes after ``after`` (deduplicated, in order) and the new cursor; waits up to ``timeout``
        for the first one."""
        with self._changed:
            self._changed.wait_for(lambda: self._seq > after, timeout)
            changes = list(dict.fromkeys((kind, key) for seq, kind, key in self._log if seq > after))
            return changes, self._seq


def _feed():
    feed = current_app.extensions.get("helpdesk.workspace_feed")
    if feed is None:
        feed = current_app.extensions.setdefault(
            "helpdesk.workspace_feed", WorkspaceFeed(current_app.config["HELPDESK_SETTINGS"].amqp_uri))
    return feed


def _visible(number):
    try:
        read_ticket(number)
        return True
    except HelpdeskError:
        return False  # not found for this person (another team's), or the service is busy: say nothing


def _event(name, cursor, data):
    lines = "".join(f"data: {line}\n" for line in (data.splitlines() or [""]))
    return f"id: {cursor}\nevent: {name}\n{lines}\n"


class _Presence:
    """The ticket page's presence, said by its stream: "here" on each beat, the others' warning when it
    changes, "gone" when the stream closes."""

    def __init__(self, number):
        self.number = number
        self.name = g.account.name or g.account.email
        self.shown = ()
        self.beat = float(os.environ.get("HELPDESK_PRESENCE_BEAT") or 5)
        self.next_beat = 0.0  # at once: the page shows nothing until the first answer

    def say(self, update):
        try:
            return say_present(self.number, update, self.name)["others"]
        except HelpdeskError:
            return None  # the service is busy: the next beat tries again

    def warning_if_changed(self):
        """The rendered warning when who is here (or typing) changed since the last one shown, else None."""
        self.next_beat = time.monotonic() + self.beat
        others = self.say({})
        if others is None:
            return None
        seen = tuple((o["actor"], o.get("name"), o["typing"]) for o in others)
        if seen == self.shown:
            return None
        self.shown = seen
        return render_template("workspace/_presence.html", others=others)

    def gone(self):
        self.say({"here": False})


def stream(only=None):
    """``text/event-stream`` of the events this page shows (see the module's doc; ``only`` or ``?ticket=``: one
    ticket only, the open ticket page, the workspace's or the portal's); comments as
    keep-alives; closes after a few minutes (EventSource reconnects, with ``Last-Event-ID``: each part of
    the page is then refreshed once, since what changed meanwhile is not replayed)."""
    only = only or request.args.get("ticket") or None
    chat_id = request.args.get("chat") or None
    chats = request.args.get("chats") == "1"
    every_ticket = only is None and chat_id is None and not chats and not request.args.get("only")
    if only is not None:
        read_ticket(only)  # the ticket's own 404 for a person who may not see it, before the stream starts
    chat_after = None
    if chat_id is not None:
        from .chat_console import read_chat

        raw = request.args.get("after") or "0"
        if not (raw.isascii() and raw.isdigit() and len(raw) < 10):
            abort(400)
        read_chat(chat_id, int(raw))  # intake's 404 chat_not_found for an outsider, before the stream starts
        chat_after = int(raw)  # what the page showed
    staff = g.identity.role in ("admin", "agent")
    presence = _Presence(only) if only is not None and staff else None
    me = g.identity.actor
    feed = _feed()
    feed.start()
    keepalive = float(os.environ.get("HELPDESK_LIVE_KEEPALIVE") or 15)
    lifetime = float(os.environ.get("HELPDESK_LIVE_STREAM_SECONDS") or 300)
    reconnected = request.headers.get("Last-Event-ID") is not None

    def chat_news(cursor):
        nonlocal chat_after
        from .chat_console import read_chat

        try:
            batch = read_chat(chat_id, chat_after)
        except HelpdeskError:
            return None
        if not batch["entries"]:
            return None
        chat_after = batch["chat"]["last_seq"]
        return _event("entry", cursor, json.dumps({"seq": chat_after}))

    def events():
        cursor = feed.seq  # only what changes from now on: the page was rendered just before
        deadline = time.monotonic() + lifetime
        yield "retry: 2000\n\n"
        if reconnected:
            if every_ticket or only is not None:
                yield _event("ticket", cursor, "{}")
            if chats:
                yield _event("chats", cursor, "{}")
            yield _event("notifications", cursor, "{}")
        if chat_id is not None:
            news = chat_news(cursor)  # what came after the page was rendered
            if news:
                yield news
        try:
            while time.monotonic() < deadline:
                wait = keepalive
                if presence is not None:
                    wait = max(0.0, min(wait, presence.next_beat - time.monotonic()))
                changes, cursor = feed.since(cursor, wait)
                said = []
                for kind, key in changes:
                    if kind == "ticket" and (every_ticket or key == only) and _visible(key):
                        said.append(_event("ticket", cursor, json.dumps({"number": key})))
                    elif kind == "notified" and me in key:
                        said.append(_event("notifications", cursor, "{}"))
                    elif kind == "presence" and presence is not None and key == only:
                        presence.next_beat = 0.0  # a colleague came, went or types: look now
                    elif kind == "chats" and chats:
                        said.append(_event("chats", cursor, "{}"))
                    elif kind == "chat" and key == chat_id:
                        news = chat_news(cursor)
                        if news:
                            said.append(news)
                if presence is not None and time.monotonic() >= presence.next_beat:
                    warning = presence.warning_if_changed()
                    if warning is not None:
                        said.append(_event("presence", cursor, warning))
                    elif not said:
                        said.append(": here\n\n")  # a closed page is noticed at the next beat, not minutes later
                yield "".join(said) if said else ": keep-alive\n\n"
        except GeneratorExit:  # the page closed (at the end of its life the stream just ends: the browser
            if presence is not None:  # reconnects at once, and saying "gone" would blink colleagues' warnings)
                presence.gone()
            raise

    # stream_with_context: the viewer (g.identity) and the RPC pool are needed while the stream runs.
    return open_stream(current_app, Response(stream_with_context(events()), mimetype="text/event-stream",
                                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}),
                       client_address(), chat=chat_id)
