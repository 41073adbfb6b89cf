"""Live chat through the gateway: customers start chats and agents join them; both post, and both
receive each other's messages live as server-sent events.

Why server-sent events: the gateway runs Flask on gunicorn gthread workers, where a WebSocket needs a
different worker class (or a second server), while SSE is plain HTTP: one thread per open stream,
proxies and the browser's ``EventSource`` handle it, and ``EventSource`` reconnects by itself, sending
the last ``id:`` it saw as ``Last-Event-ID``. Posting is an ordinary POST.

Across workers and replicas: the timeline lives in intake's database and every entry is announced on
``intake.events`` (through intake's outbox). Each gateway process binds one exclusive queue to the chat
events (``ChatFanout``) and wakes its streams of that chat; a stream then reads the entries after the
last one it sent. The event only wakes; the data comes from the timeline, so a missed or late event
costs at most one keep-alive interval, never a message, and a reconnecting stream loses nothing.

Who may read and post (decided by intake, ``helpdesk_intake.domain.chat.may_see``): admins and agents whose token names no
team; an agent limited to teams, the waiting chats and the ones they joined; the customer who started the
chat, by the chat token handed out at the start (``X-Chat-Token`` header, or ``?token=`` since
``EventSource`` cannot set headers) or by their own customer bearer token. Anyone else gets 404
``chat_not_found``. Chats are started by customers and visitors only (``roles``).
"""
import json
import logging
import os
import time
from collections import OrderedDict

from flask import Blueprint, Response, current_app, jsonify, request

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.chat import (ChatEntryView, ChatPost, ChatQuery, ChatStarted, ChatTimeline, ChatView,
                                             EntriesQuery, NewChat)
from helpdesk_common.errors import HelpdeskError, ValidationFailed

from ..fanout import EventFeed
from ..ratelimits import client_address
from ..streams import open_stream
from . import json_body, operation, query_args, services, viewer

log = logging.getLogger(__name__)

bp = Blueprint("chat", __name__, url_prefix="/api/v1")

CHAT_EVENTS = ("chat_started", "chat_message_posted", "chat_answered", "chat_ended")
TOKEN_HEADER = "X-Chat-Token"
TOKEN = {TOKEN_HEADER: "The chat token from the start of the chat (customers without a bearer token); "
                       "or pass it as the query parameter token."}
CHAT_ERRORS = (404, 422)


def _seconds(name, default):
    return float(os.environ.get(name) or default)


class ChatFanout(EventFeed):
    """This process's one subscription to the chat events: wakes the streams waiting on a chat."""

    source = "intake"
    event_types = CHAT_EVENTS
    unavailable = "The live chat feed is not available; retry shortly."

    def __init__(self, amqp_uri, keep=10_000):
        super().__init__(amqp_uri)
        self.keep = keep
        self._latest = OrderedDict()  # chat id -> the highest seq announced

    def on_event(self, envelope):
        chat_id, seq = envelope["data"]["chat"]["id"], envelope["data"]["entry"]["seq"]
        self._latest[chat_id] = max(seq, self._latest.pop(chat_id, 0))
        while len(self._latest) > self.keep:
            self._latest.popitem(last=False)

    def wait(self, chat_id, after, timeout):
        """True once an entry after ``after`` was announced for ``chat_id``; False after ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: self._latest.get(chat_id, 0) > after, timeout)


def _fanout():
    fanout = current_app.extensions.get("helpdesk.chat_fanout")
    if fanout is None:
        fanout = current_app.extensions.setdefault(
            "helpdesk.chat_fanout", ChatFanout(current_app.config["HELPDESK_SETTINGS"].amqp_uri))
    return fanout


def _token():
    return request.headers.get(TOKEN_HEADER) or request.args.get("token") or None


def _after():
    """Where a stream resumes: ``Last-Event-ID`` (sent by a reconnecting EventSource) or ``?after=``."""
    raw = request.headers.get("Last-Event-ID") or request.args.get("after") or "0"
    if not (raw.isascii() and raw.isdigit() and len(raw) < 10):
        raise ValidationFailed("Last-Event-ID / after must be the seq of the last entry you received.",
                               details=[{"field": "after", "code": "invalid_format", "message": "a whole number"}])
    return int(raw)


@operation(bp, "/chats", "POST", summary="Start a chat", tag="chat", body=NewChat, answer=ChatStarted,
           answer_status=201, public=True, roles=("customer",), errors=(400, 403, 415, 422), scope="own")
def start_chat():
    """From the portal: visitors give ``name`` and ``email``; a signed-in customer's own address is used.
    Keep the answer's ``token``: it lets this visitor (and nobody else) read and post."""
    body = json_body()
    validate(NewChat, body)
    return jsonify(services().call("intake", "start_chat", body, viewer())), 201


@operation(bp, "/chats", "GET", summary="Chats waiting for an agent", tag="chat", query=ChatQuery, answer=ChatView,
           answer_is_list=True, roles=("admin", "agent"), errors=(403, 422), scope="list")
def list_chats():
    """Oldest first (``state`` waiting by default; active or ended also)."""
    return jsonify(services().call("intake", "list_chats", query_args(ChatQuery).model_dump(), viewer()))


@operation(bp, "/chats/<chat_id>/join", "POST", summary="Join a chat", tag="chat", answer=ChatView,
           roles=("admin", "agent"), errors=(403, 404, 409), scope="chat")
def join_chat(chat_id):
    """The agent takes a waiting chat (409 ``chat_taken`` if another agent was first); the chat's ticket is
    opened now, with the transcript so far."""
    return jsonify(services().call("intake", "join_chat", chat_id, viewer()))


@operation(bp, "/chats/<chat_id>/messages", "POST", summary="Post in a chat", tag="chat", body=ChatPost,
           answer=ChatEntryView, answer_status=201, public=True,
           headers=TOKEN, errors=CHAT_ERRORS + (400, 409, 415), scope="chat")
def post_chat_message(chat_id):
    """The customer or the agent who joined writes; 409 ``chat_ended`` after the end."""
    body = json_body()
    validate(ChatPost, body)
    return jsonify(services().call("intake", "post_chat_message", chat_id, body, viewer(), _token())), 201


@operation(bp, "/chats/<chat_id>/leave", "POST", summary="Leave (end) a chat", tag="chat", answer=ChatView,
           public=True, headers=TOKEN, errors=CHAT_ERRORS, scope="chat")
def leave_chat(chat_id):
    """The customer leaves or the agent closes it. A chat nobody answered becomes an ordinary ticket."""
    return jsonify(services().call("intake", "leave_chat", chat_id, viewer(), _token()))


@operation(bp, "/chats/<chat_id>/entries", "GET", summary="Read a chat's timeline", tag="chat",
           query=EntriesQuery, answer=ChatTimeline, public=True, headers=TOKEN, errors=CHAT_ERRORS, scope="chat")
def chat_entries(chat_id):
    """Entries after ``after`` (the last seq you have), oldest first: for clients that poll."""
    query = {k: v for k, v in request.args.items() if k != "token"}
    filters = validate(EntriesQuery, query, strict=False)
    return jsonify(services().call("intake", "chat_entries", chat_id, filters.model_dump(), viewer(), _token()))


@operation(bp, "/chats/<chat_id>/stream", "GET", summary="Follow a chat live (server-sent events)", tag="chat",
           public=True, headers={**TOKEN, "Last-Event-ID": "Resume after this entry (sent by EventSource "
                                                           "when it reconnects); or ?after=<seq>."},
           errors=CHAT_ERRORS + (429,), scope="chat")
def chat_stream(chat_id):
    """``text/event-stream``: one event per entry (``event:`` message, joined or ended; ``id:`` its seq;
    ``data:`` the entry as JSON), comments as keep-alives. The stream closes after the chat ends, and
    every few minutes (the client reconnects with Last-Event-ID); a chat that has ended with nothing
    left to send answers 204, which tells EventSource to stop."""
    pool, who, token, after = services(), viewer(), _token(), _after()
    # Authorisation and the first batch before the 200: an outsider gets a JSON 404, not a stream.
    batch = pool.call("intake", "chat_entries", chat_id, {"after": after}, who, token)
    if batch["chat"]["state"] == "ended" and not batch["entries"]:
        return Response(status=204)
    fanout = _fanout()
    fanout.start()
    keepalive = _seconds("HELPDESK_CHAT_KEEPALIVE", 15)
    lifetime = _seconds("HELPDESK_CHAT_STREAM_SECONDS", 300)

    def events(batch, cursor):
        deadline = time.monotonic() + lifetime
        yield "retry: 1000\n\n"
        while True:
            for entry in batch["entries"]:
                cursor = entry["seq"]
                yield f"id: {cursor}\nevent: {entry['kind']}\ndata: {json.dumps(entry, ensure_ascii=False)}\n\n"
            if batch["chat"]["state"] == "ended" or time.monotonic() > deadline:
                return
            if not fanout.wait(chat_id, cursor, keepalive):
                yield ": keep-alive\n\n"  # also how a closed connection is noticed
            try:
                batch = pool.call("intake", "chat_entries", chat_id, {"after": cursor}, who, token)
            except HelpdeskError:
                return  # the client reconnects with Last-Event-ID and resumes

    return open_stream(current_app, Response(events(batch, after), mimetype="text/event-stream",
                                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}),
                       client_address(), chat=chat_id)
