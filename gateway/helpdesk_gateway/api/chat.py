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
chat, by the chat token handed out at the start (``X-Chat-Token`` header) or by their own customer bearer
token. Anyone else gets 404 ``chat_not_found``. Chats are started by customers and visitors only (``roles``).

Tokens never travel in URLs (they end up in access logs, proxies and browser history). ``EventSource``
cannot set headers, so a browser first asks for a **stream ticket** (``POST .../stream-ticket`` with its
header or bearer token) and opens ``.../stream?ticket=...``: a ticket is signed by the gateway (the shared
secret key), names one chat and who asked, and is accepted for ``HELPDESK_STREAM_TICKET_SECONDS`` (60); a
reconnecting browser asks for a new one.
"""
import json
import logging
import os
import time
from collections import OrderedDict

from typing import Optional

from flask import Blueprint, Response, current_app, jsonify, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import Field

from helpdesk_common.contracts import Contract, View, validate
from helpdesk_common.contracts.chat import (ChatEntryView, ChatPost, ChatQuery, ChatStarted, ChatTimeline, ChatView,
                                             EntriesQuery, NewChat)
from helpdesk_common.errors import HelpdeskError, NotFound, ValidationFailed

from ..fanout import EventFeed
from ..ui.security import secret_key
from ..ratelimits import client_address
from ..streams import open_stream
from . import json_body, operation, query_args, services, viewer

log = logging.getLogger(__name__)

bp = Blueprint("chat", __name__, url_prefix="/api/v1")

CHAT_EVENTS = ("chat_started", "chat_message_posted", "chat_answered", "chat_ended")
TOKEN_HEADER = "X-Chat-Token"
TOKEN = {TOKEN_HEADER: "The chat token from the start of the chat (customers without a bearer token)."}
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
    return request.headers.get(TOKEN_HEADER) or None


class StreamTicket(View):
    ticket: str
    expires_in: int  # seconds within which the stream must be opened with it


def _ticket_signer():
    sessions = current_app.extensions["helpdesk.db"]
    return URLSafeTimedSerializer(secret_key(sessions), salt="chat-stream-ticket")


def _ticket_seconds():
    return int(_seconds("HELPDESK_STREAM_TICKET_SECONDS", 60))


def _viewer_from_ticket(chat_id, ticket):
    """The viewer a valid ticket for ``chat_id`` stands for; 404 chat_not_found otherwise (as for an outsider)."""
    try:
        claims = _ticket_signer().loads(ticket, max_age=_ticket_seconds())
    except (BadSignature, SignatureExpired):
        claims = None
    if not isinstance(claims, dict) or claims.get("chat") != chat_id:
        raise NotFound("This stream ticket is not valid for this chat, or has expired; ask for a new one "
                            "(POST .../stream-ticket).", code="chat_not_found")
    # A chat-token holder was checked against the chat when the ticket was made; the stream reads that one
    # chat on the platform's behalf, since the chat token itself is not in the ticket.
    return claims["viewer"] if claims["viewer"]["role"] != "anonymous" else {**claims["viewer"], "role": "system"}


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
    filters = validate(EntriesQuery, dict(request.args.items()), strict=False)
    return jsonify(services().call("intake", "chat_entries", chat_id, filters.model_dump(), viewer(), _token()))


@operation(bp, "/chats/<chat_id>/stream-ticket", "POST", summary="A short-lived ticket to open a chat's stream",
           tag="chat", answer=StreamTicket, answer_status=201, public=True, headers=TOKEN, errors=CHAT_ERRORS,
           scope="chat")
def chat_stream_ticket(chat_id):
    """For browsers (``EventSource`` cannot send headers): open ``.../stream?ticket=<ticket>`` within
    ``expires_in`` seconds. Asked with the chat token header or a bearer token; the ticket is good for this
    chat only."""
    who = viewer()
    services().call("intake", "chat_entries", chat_id, {"after": 0, "limit": 1}, who, _token())  # 404 for outsiders
    claims = {"chat": chat_id, "viewer": {key: who[key] for key in ("actor", "role", "email", "teams")}}
    return jsonify({"ticket": _ticket_signer().dumps(claims), "expires_in": _ticket_seconds()}), 201


class StreamQuery(Contract):
    ticket: Optional[str] = Field(default=None, max_length=2000)
    after: Optional[str] = None


@operation(bp, "/chats/<chat_id>/stream", "GET", summary="Follow a chat live (server-sent events)", tag="chat",
           public=True, query=StreamQuery,
           headers={**TOKEN, "Last-Event-ID": "Resume after this entry (sent by EventSource "
                                              "when it reconnects); or ?after=<seq>."},
           errors=CHAT_ERRORS + (429,), scope="chat")
def chat_stream(chat_id):
    """``text/event-stream``: one event per entry (``event:`` message, joined or ended; ``id:`` its seq;
    ``data:`` the entry as JSON), comments as keep-alives. The stream closes after the chat ends, and
    every few minutes (the client reconnects with Last-Event-ID); a chat that has ended with nothing
    left to send answers 204, which tells EventSource to stop."""
    query = query_args(StreamQuery)
    pool, who, token, after = services(), viewer(), _token(), _after()
    if query.ticket is not None:
        who = {**_viewer_from_ticket(chat_id, query.ticket), "correlation_id": who["correlation_id"]}
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
