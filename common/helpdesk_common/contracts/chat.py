"""Contracts of live chat (owned by intake: chat is a channel): starting a chat, posting, and what the
chat, its timeline entries and its events look like.

A chat's timeline is a list of entries numbered 1, 2, 3... per chat (``seq``): messages, an agent
joining, the end. Streams and pollers resume after the last ``seq`` they saw, so nothing is lost when a
connection drops.
"""
from datetime import datetime
from typing import Annotated, Literal, Optional

from pydantic import Field, StringConstraints

from . import MAX_RECORD_ID, Contract, EmailAddress, View

ChatText = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]


class NewChat(Contract):
    """A customer starts a chat: anonymous visitors give ``name`` and ``email``; a signed-in customer's
    own address is used."""

    message: ChatText
    name: Optional[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = None
    email: Optional[EmailAddress] = None
    subject: Optional[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = None
    language: Optional[Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]] = None


class ChatPost(Contract):
    body: ChatText


class ChatQuery(Contract):
    state: Optional[Literal["waiting", "active", "ended"]] = "waiting"
    limit: Annotated[int, Field(ge=1, le=100)] = 50


class EntriesQuery(Contract):
    after: Annotated[int, Field(ge=0, le=MAX_RECORD_ID)] = 0
    limit: Annotated[int, Field(ge=1, le=500)] = 200


class ChatEntryView(View):
    seq: int
    kind: Literal["message", "joined", "ended"]
    author: str
    author_role: str
    body: Optional[str] = None
    at: datetime


class ChatView(View):
    id: str
    state: Literal["waiting", "active", "ended"]
    customer: dict
    agent: Optional[str] = None
    subject: str
    ticket_number: Optional[str] = None  # once answered, or once it ended unanswered
    outcome: Optional[Literal["answered", "unanswered"]] = None
    last_seq: int
    started_at: datetime
    answered_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None


class ChatStarted(View):
    """``token`` is only in the answer to the customer who started it, never in events."""

    chat: ChatView
    token: Optional[str] = None


class ChatEvent(View):
    """Data of chat_started, chat_message_posted, chat_answered and chat_ended: the chat and the entry."""

    chat: ChatView
    entry: ChatEntryView


class ChatTimeline(View):
    """The chat and its entries after the ``after`` the caller gave."""

    chat: ChatView
    entries: list[ChatEntryView]
