"""Live chat, the channel: a customer and an agent converse; the transcript goes onto a ticket. No nameko.

The chat's timeline (``ChatEntry``, numbered per chat) lives here, and every entry is announced through
the outbox (``chat_started``, ``chat_message_posted``, ``chat_answered``, ``chat_ended``): the gateway's
streams wake on those events and read the timeline after the last entry they sent, so a stream that
reconnects resumes exactly where it stopped.

The ticket (channel ``chat``) is opened when an agent joins, or when the chat ends unanswered (the
customer left, or nobody answered within ``answer_timeout``): then it is an ordinary ticket that routing
queues like any other. Its first message is the description; every later message is added to it as a
public message by its author. A failed tickets call is retried by the sweep (``settle``), never dropped.

Who sees a chat (``may_see``): admins, the platform, and agents whose token names no team, every chat;
its customer (by the chat token, or their customer token); an agent limited to teams, the chats waiting
for an agent and the ones they joined. A chat is not routed to a team: it waits for whichever agent
answers first, like an untriaged ticket (which every agent sees), and its ticket is opened only when
an agent joins or it ends unanswered; routing then places that ticket, and from then on the tickets
service's team limits apply to the transcript on it. So a team-limited agent never reads a conversation
another agent is having or had, unless through a ticket of their teams. Others get 404 ``chat_not_found``.
"""
import contextlib
import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update

from helpdesk_common.contracts.intake import RateLimited
from helpdesk_common.database import utcnow
from helpdesk_common.errors import Conflict, Forbidden, HelpdeskError, ValidationFailed, from_wire
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage

from .. import exceptions as errors
from ..exceptions import chat_not_found
from .ingest import clip, customer_viewer
from ..models import ChatEntry, ChatSession, Outbox

log = logging.getLogger(__name__)

STAFF = ("admin", "agent")
SYSTEM = {"actor": "intake", "role": "system"}


@dataclass(frozen=True)
class ChatSettings:
    answer_timeout: float = 120.0   # seconds a chat may wait for an agent before it becomes a ticket
    sweep_interval: float = 5.0     # how often waiting chats are checked and transcripts retried
    tickets_patience: float = 5.0   # how long a chat request waits for the tickets service
    settle_after: float = 10.0      # the sweep leaves chats this recently active to the live path
    lease_seconds: float = 60.0     # a transcriber that died lets go of its chat after this
    start_limit: int = 10           # chats one address may start within start_window (abuse guard)
    start_window: float = 3600.0

    @classmethod
    def from_config(cls, config):
        get = config.get
        return cls(answer_timeout=float(get("CHAT_ANSWER_TIMEOUT") or cls.answer_timeout),
                   sweep_interval=float(get("CHAT_SWEEP_INTERVAL") or cls.sweep_interval),
                   tickets_patience=float(get("CHAT_TICKETS_PATIENCE") or cls.tickets_patience),
                   settle_after=float(get("CHAT_SETTLE_AFTER") or cls.settle_after),
                   start_limit=int(get("CHAT_START_LIMIT") or cls.start_limit),
                   start_window=float(get("CHAT_START_WINDOW") or cls.start_window))


def _hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def chat_view(chat):
    iso = lambda moment: moment.isoformat() if moment is not None else None  # noqa: E731
    return {"id": chat.id, "state": chat.state, "customer": {"email": chat.customer_email, "name": chat.customer_name},
            "agent": chat.agent, "subject": chat.subject, "ticket_number": chat.ticket_number,
            "outcome": chat.outcome, "last_seq": chat.last_seq, "started_at": iso(chat.started_at),
            "answered_at": iso(chat.answered_at), "ended_at": iso(chat.ended_at)}


def _team_limited(viewer):
    return viewer.role == "agent" and bool(viewer.teams)


def may_see(chat, viewer, token=None):
    """Whether ``viewer`` (or the bearer of ``token``) may read and act on ``chat`` (see the module's docstring)."""
    if viewer.role in ("admin", "system") or (viewer.role == "agent" and not viewer.teams):
        return True
    if viewer.role == "agent":
        return chat.state == "waiting" or chat.agent == viewer.actor
    if token and hmac.compare_digest(_hash(token), chat.token_hash):
        return True
    return viewer.role == "customer" and (viewer.email or "").lower() == chat.customer_email


def add_entry(session, chat, kind, author, role, body, event_type, correlation_id=None, in_ticket=None):
    """The chat's next entry, announced through the outbox in the caller's transaction. A message goes onto
    the ticket later (``in_ticket`` false) unless it came from there (``in_ticket=True``)."""
    chat.last_seq += 1
    entry = ChatEntry(chat_id=chat.id, seq=chat.last_seq, kind=kind, author=author, author_role=role, body=body,
                      at=utcnow(), in_ticket=kind != "message" if in_ticket is None else in_ticket)
    session.add(entry)
    session.flush()
    stage(session, Outbox, new_event(event_type, {"chat": chat_view(chat), "entry": entry_view(entry)},
                                     correlation_id=correlation_id, subject=chat.ticket_number))
    return entry


def platform_says(message):
    """A public message the platform itself writes to the customer on a ticket (a satisfaction survey with
    its link): by a service with the system role other than intake, whose own system messages are what
    came in on a channel (a call record, a third party in a social thread), never to be sent back out."""
    return (message.get("visibility") == "public" and message.get("author_role") == "system"
            and message.get("author") != SYSTEM["actor"])


def relay_to_open_chat(session, ticket, message):
    """Post what the platform says on a chat ticket (``platform_says``: the survey when the ticket is
    resolved) into its chat while the customer is still in it, in the ``message_added`` handler's transaction
    (once per event). It is on the ticket already: the entry is marked so (never copied back). An ended
    chat's customer finds it on the ticket (the portal's conversation). Answers the entry, or None."""
    if ticket.get("channel") != "chat" or not platform_says(message):
        return None
    chat = session.scalar(select(ChatSession).where(ChatSession.ticket_number == ticket["number"])
                          .order_by(ChatSession.started_at.desc()).limit(1).with_for_update())
    if chat is None or chat.state == "ended":
        return None
    return add_entry(session, chat, "message", message["author"], "system", message["body"], "chat_message_posted",
                     in_ticket=True)


def entry_view(entry):
    return {"seq": entry.seq, "kind": entry.kind, "author": entry.author, "author_role": entry.author_role,
            "body": entry.body, "at": entry.at.isoformat()}


class ChatDesk:
    def __init__(self, sessions, tickets, settings: ChatSettings, patience=contextlib.nullcontext):
        """``patience()``: a context manager that bounds how long a chat request waits for the tickets
        service (the service passes an eventlet timeout); what does not finish is left to the sweep."""
        self.sessions = sessions
        self.tickets = tickets
        self.settings = settings
        self.patience = patience

    # --- who may do what ------------------------------------------------------------------------

    def _chat(self, session, chat_id, viewer, token, for_update=False):
        """The chat if ``viewer`` (or the bearer of ``token``) takes part in it; otherwise the same
        answer as for a chat that does not exist, so outsiders learn nothing."""
        query = select(ChatSession).where(ChatSession.id == str(chat_id))
        if for_update:
            query = query.with_for_update()
        chat = session.scalar(query)
        if chat is None or not may_see(chat, viewer, token):
            raise chat_not_found(chat_id)
        return chat

    def _add(self, session, chat, kind, author, role, body, event_type, viewer=None):
        return add_entry(session, chat, kind, author, role, body, event_type, getattr(viewer, "correlation_id", None))

    # --- the customer -----------------------------------------------------------------------------

    def start(self, command, viewer):
        """Start a chat; answers the chat and the customer's secret token (needed by anonymous visitors
        to read and post; a signed-in customer may use their bearer token instead)."""
        if viewer.role == "customer":
            email = (viewer.email or "").lower()
            if command.email and command.email.lower() != email:
                raise errors.requester_mismatch("start chats")
        elif viewer.role == "anonymous":
            missing = [f for f in ("name", "email") if not getattr(command, f)]
            if missing:
                raise ValidationFailed("Give your name and email address to start a chat.", details=[
                    {"field": f, "code": "missing", "message": "needed to start a chat without signing in"}
                    for f in missing])
            email = command.email.lower()
        else:
            raise Forbidden("Chats are started by customers; agents join them.", code="customers_only")
        token = secrets.token_urlsafe(24)
        now = utcnow()
        with self.sessions.begin() as session:
            # Anyone may start a chat under any address, as with the web form: limit starts per address.
            recent = session.scalar(select(func.count()).select_from(ChatSession).where(
                ChatSession.customer_email == email,
                ChatSession.started_at >= now - timedelta(seconds=self.settings.start_window)))
            if recent >= self.settings.start_limit:
                raise RateLimited(f"{email} started {recent} chats in the last "
                                  f"{self.settings.start_window / 60:g} minutes; try again later.")
            chat = ChatSession(id=str(uuid.uuid4()), state="waiting", customer_email=email,
                               customer_name=command.name, token_hash=_hash(token), language=command.language,
                               subject=command.subject or clip(f"Chat: {command.message.splitlines()[0]}", 200),
                               last_seq=0, started_at=now)
            session.add(chat)
            session.flush()  # the chat before its first entry (no ORM relationship orders them)
            self._add(session, chat, "message", email, "customer", command.message, "chat_started", viewer)
            return {"chat": chat_view(chat), "token": token}

    # --- everyone in the chat ---------------------------------------------------------------------

    def get(self, chat_id, viewer, token=None):
        with self.sessions() as session:
            return chat_view(self._chat(session, chat_id, viewer, token))

    def entries(self, chat_id, viewer, token=None, after=0, limit=200):
        """The chat and its entries after ``after`` (the last seq the caller has), oldest first."""
        with self.sessions() as session:
            chat = self._chat(session, chat_id, viewer, token)
            rows = session.scalars(select(ChatEntry).where(ChatEntry.chat_id == chat.id, ChatEntry.seq > after)
                                   .order_by(ChatEntry.seq).limit(limit))
            return {"chat": chat_view(chat), "entries": [entry_view(e) for e in rows]}

    def post(self, chat_id, body, viewer, token=None):
        with self.sessions.begin() as session:
            chat = self._chat(session, chat_id, viewer, token, for_update=True)
            if chat.state == "ended":
                raise Conflict("This chat has ended; start a new one.", code="chat_ended")
            if viewer.role in STAFF:
                if chat.state != "active":
                    raise Conflict("Join the chat before writing in it.", code="chat_not_joined")
                author, role = viewer.actor, viewer.role
            else:
                author, role = chat.customer_email, "customer"
            return entry_view(self._add(session, chat, "message", author, role, body, "chat_message_posted",
                                        viewer))

    def leave(self, chat_id, viewer, token=None):
        """The customer leaves, or an agent closes the chat. Unanswered, it becomes an ordinary ticket."""
        who = "agent" if viewer.role in STAFF else "customer"
        return self._end(chat_id, viewer, token, f"{who} left")

    def _end(self, chat_id, viewer, token, reason):
        with self.sessions.begin() as session:
            chat = self._chat(session, chat_id, viewer, token, for_update=True)
            if chat.state != "ended":
                chat.outcome = "answered" if chat.agent else "unanswered"
                chat.state, chat.ended_at = "ended", utcnow()
                actor = chat.customer_email if viewer.role in ("customer", "anonymous") else viewer.actor
                self._add(session, chat, "ended", actor, viewer.role, reason, "chat_ended", viewer)
            view = chat_view(chat)
        self.transcribe(chat_id)
        return self.get(chat_id, viewer, token) if view["ticket_number"] is None else view

    # --- agents -----------------------------------------------------------------------------------

    def waiting(self, state="waiting", limit=50, viewer=None):
        """Chats in ``state``, oldest first; an agent limited to teams sees the waiting ones and their own."""
        query = select(ChatSession).where(ChatSession.state == state)
        if viewer is not None and _team_limited(viewer) and state != "waiting":
            query = query.where(ChatSession.agent == viewer.actor)
        with self.sessions() as session:
            rows = session.scalars(query.order_by(ChatSession.started_at).limit(limit))
            return [chat_view(c) for c in rows]

    def join(self, chat_id, viewer):
        """An agent takes a waiting chat. Two agents joining at once: one gets it, the other 409."""
        if viewer.role not in STAFF:
            raise errors.agents_only("join chats.")
        with self.sessions.begin() as session:
            chat = self._chat(session, chat_id, viewer, None)
            if chat.state == "active" and chat.agent == viewer.actor:
                return chat_view(chat)  # a repeated join changes nothing
            if chat.state != "waiting":
                raise Conflict(f"This chat is {chat.state} ({'with ' + chat.agent if chat.agent else 'ended'}).",
                               code="chat_taken" if chat.state == "active" else "chat_ended")
            # A conditional UPDATE: of two agents (or replicas) only one moves it out of waiting.
            taken = session.execute(update(ChatSession).where(ChatSession.id == chat.id, ChatSession.state == "waiting")
                                    .values(state="active", agent=viewer.actor, answered_at=utcnow(),
                                            agent_viewer={"actor": viewer.actor, "role": viewer.role,
                                                          "teams": list(viewer.teams)})
                                    .execution_options(synchronize_session=False)).rowcount
            if not taken:
                raise Conflict("Another agent took this chat a moment ago.", code="chat_taken")
            session.refresh(chat)
            self._add(session, chat, "joined", viewer.actor, viewer.role, None, "chat_answered", viewer)
        self.transcribe(chat_id)
        return self.get(chat_id, viewer)

    # --- the transcript on the ticket, and the sweep ----------------------------------------------

    def transcribe(self, chat_id):
        """Open the chat's ticket if it is due and add the messages not on it yet. One transcriber per
        chat at a time (a lease in the database, whatever the replicas); a failure is logged and left to
        the sweep: the chat goes on meanwhile."""
        if not self._lease(chat_id, self.settings.lease_seconds):
            return  # another worker is at it, and takes what is pending before it lets go
        try:
            with self.patience():
                self._open_ticket(chat_id)
                while self._copy_messages(chat_id):
                    pass
        except Exception:
            log.warning("chat %s: the transcript could not reach the ticket yet; the sweep retries", chat_id,
                        exc_info=True)
        finally:
            self._lease(chat_id, None)

    def _lease(self, chat_id, seconds):
        """Take the chat's transcript lease for ``seconds`` (True if taken), or give it back (None)."""
        now = utcnow()
        with self.sessions.begin() as session:
            if seconds is None:
                session.execute(update(ChatSession).where(ChatSession.id == chat_id)
                                .values(transcribing_until=None))
                return True
            return session.execute(update(ChatSession).where(
                ChatSession.id == chat_id,
                (ChatSession.transcribing_until.is_(None)) | (ChatSession.transcribing_until < now))
                .values(transcribing_until=now + timedelta(seconds=seconds))).rowcount == 1

    def _open_ticket(self, chat_id):
        with self.sessions() as session:
            chat = session.get(ChatSession, chat_id)
            if chat is None or chat.ticket_number or chat.state == "waiting":
                return
            first = session.scalar(select(ChatEntry).where(ChatEntry.chat_id == chat_id, ChatEntry.seq == 1))
            ticket = {"subject": chat.subject, "description": first.body, "channel": "chat",
                      "requester": {"email": chat.customer_email,
                                    **({"name": chat.customer_name} if chat.customer_name else {})},
                      "tags": ["chat"] + (["chat-unanswered"] if chat.outcome == "unanswered" else [])}
            if chat.language:
                ticket["language"] = chat.language
        # The idempotency key makes a retry (after a lost answer, or from another replica) the same ticket.
        (answer,) = self.tickets.create_tickets([{"ticket": ticket, "viewer": SYSTEM,
                                                  "idempotency_key": f"chat:{chat_id}"}])
        if "error" in answer:
            raise from_wire(answer["error"])
        with self.sessions.begin() as session:
            chat = session.get(ChatSession, chat_id)
            chat.ticket_number = answer["ticket"]["number"]
            session.execute(update(ChatEntry).where(ChatEntry.chat_id == chat_id, ChatEntry.seq == 1)
                            .values(in_ticket=True))

    def _copy_messages(self, chat_id):
        with self.sessions() as session:
            chat = session.get(ChatSession, chat_id)
            if chat is None or not chat.ticket_number:
                return
            number, email, agent_viewer = chat.ticket_number, chat.customer_email, chat.agent_viewer
            pending = [(e.id, e.author, e.author_role, e.body) for e in session.scalars(
                select(ChatEntry).where(ChatEntry.chat_id == chat_id, ChatEntry.kind == "message", ChatEntry.seq > 1,
                                        ChatEntry.in_ticket.is_(False))
                .order_by(ChatEntry.seq))]

        def poster(author, role):
            if role == "customer":
                return customer_viewer(email)
            if agent_viewer and author == agent_viewer["actor"]:
                return agent_viewer
            return {"actor": author, "role": role}

        for entry_id, author, role, body in pending:
            # The key makes a retry (after a lost answer, or from the sweep) the same message on the ticket.
            self.tickets.add_message(number, {"body": body, "visibility": "public"}, poster(author, role),
                                     idempotency_key=f"chat:{chat_id}:{entry_id}")
            with self.sessions.begin() as session:
                session.execute(update(ChatEntry).where(ChatEntry.id == entry_id).values(in_ticket=True))
        return len(pending)

    def settle(self, now=None):
        """The sweep: end chats nobody answered in time (they become tickets), and retry transcripts that
        did not reach their ticket. Answers the ids of the chats it ended."""
        now = now or utcnow()
        deadline = now - timedelta(seconds=self.settings.answer_timeout)
        with self.sessions() as session:
            overdue = list(session.scalars(select(ChatSession.id).where(ChatSession.state == "waiting",
                                                                        ChatSession.started_at <= deadline)))
        ended = []
        for chat_id in overdue:
            try:
                self._end(chat_id, _System(), None, f"no agent answered within {self.settings.answer_timeout:g} s")
                ended.append(chat_id)
            except HelpdeskError:
                log.warning("chat %s could not be ended", chat_id, exc_info=True)
        quiet = now - timedelta(seconds=self.settings.settle_after)
        with self.sessions() as session:
            behind = set(session.scalars(select(ChatSession.id).where(
                ChatSession.state != "waiting", ChatSession.ticket_number.is_(None))))
            behind |= set(session.scalars(select(ChatEntry.chat_id).join(ChatSession).where(
                ChatSession.state != "waiting", ChatEntry.in_ticket.is_(False), ChatEntry.at <= quiet).distinct()))
        for chat_id in sorted(behind):
            self.transcribe(chat_id)
        return ended


class _System:
    """The sweep acting on a chat: sees every chat."""

    actor, role, email, teams, correlation_id = "intake", "system", None, (), None
