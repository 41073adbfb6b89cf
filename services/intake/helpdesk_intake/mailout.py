"""Mail to customers: which events cause one, how it is threaded, and how the queue of it is sent.

Event handlers call :func:`notify_*` inside their transaction: the mail becomes a row of
``outgoing_mail`` with its Message-ID fixed at once (and recorded for threading), so the event and the
mail it causes are committed together. :class:`MailSender` sends due rows over SMTP; a failure
schedules the next attempt with backoff; after the last one, or a permanent refusal (5xx), the row is
``failed`` and stays visible until an operator retries it. A crash between the SMTP server's "250 OK"
and the row's update sends the mail again, with the same Message-ID (mail clients show it once).
"""
import email.charset
import email.header
import email.mime.text
import logging
import smtplib
import uuid
from datetime import timedelta
from email.utils import format_datetime, formataddr

from sqlalchemy import bindparam, func, or_, select, update

from helpdesk_common.bulk import insert_rows
from helpdesk_common.database import utcnow
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage, wake_relays

from . import exceptions as errors
from .domain import templates
from .models import ErasedTicket, OutgoingMail, Outbox, ThreadMessageId
from .settings import tls_context

log = logging.getLogger(__name__)

STAFF_AUTHORS = ("agent", "admin")
MAX_REFERENCES = 20


def new_message_id(number, domain):
    return f"{number}.{uuid.uuid4().hex}@{domain}"


def _thread_headers(session, number):
    """(In-Reply-To, References, Reply-To) for a new mail on ticket ``number``: the customer's latest
    message if there is one, else our latest; References lists the thread, oldest first; Reply-To is where
    the customer's latest mail asked answers to go (None: to the requester)."""
    rows = list(session.scalars(select(ThreadMessageId).where(ThreadMessageId.ticket_number == number)
                                .order_by(ThreadMessageId.created_at)))
    if not rows:
        return None, [], None
    inbound = [r for r in rows if r.direction == "in"]
    in_reply_to = (inbound or rows)[-1].message_id
    references = [r.message_id for r in rows]
    if len(references) > MAX_REFERENCES:
        references = references[:1] + references[-(MAX_REFERENCES - 1):]
    return in_reply_to, references, inbound[-1].reply_to if inbound else None


def _mail_values(settings, kind, ticket, template, values, automatic, thread, now, to_address=None):
    """The ``outgoing_mail`` row (as a dict) of one mail to ``ticket``'s requester (or ``to_address``);
    ``thread`` is ``(in_reply_to, references)``."""
    language = ticket.get("language") or settings.default_language
    values = {"number": ticket["number"], "subject": ticket["subject"],
              "name": ticket["requester"].get("name"), "support_name": settings.support_name, **values}
    subject, body = templates.render(template, language, values, settings.templates_dir, settings.default_language)
    in_reply_to, references = thread
    return dict(kind=kind, ticket_number=ticket["number"], to_address=to_address or ticket["requester"]["email"],
                to_name=ticket["requester"].get("name"), subject=subject, body=body,
                language=language if language in templates.BUILT_IN else settings.default_language,
                message_id=new_message_id(ticket["number"], settings.support_domain), in_reply_to=in_reply_to,
                references=references, automatic=automatic, status="pending", attempts=0, next_attempt_at=now,
                created_at=now)


def enqueue(session, settings, kind, ticket, template, values, automatic=True, thread=None):
    """Write one mail to ``ticket``'s requester into the queue (caller's transaction); returns the row.

    ``thread``: ``(in_reply_to, references)`` when the caller knows them (saves a query per mail). None: the
    ticket's requester was erased (an event that was on its way still carried their address)."""
    if session.get(ErasedTicket, ticket["number"]) is not None:
        return None
    reply_to = None
    if thread is None:
        *thread, reply_to = _thread_headers(session, ticket["number"])
    now = utcnow()
    row = OutgoingMail(**_mail_values(settings, kind, ticket, template, values, automatic, thread, now,
                                      to_address=reply_to))
    session.add(row)
    session.add(ThreadMessageId(message_id=row.message_id, ticket_number=ticket["number"], direction="out",
                                created_at=now))
    return row


def enqueue_account_mail(session, settings, mail):
    """A mail about a person's account (``AccountMail``: the gateway wrote it) into the queue; no ticket,
    no thread. Its body (a one-time link) is never shown by the operators' queue view."""
    now = utcnow()
    row = OutgoingMail(kind="account", ticket_number="", to_address=mail.to, to_name=mail.name,
                       subject=mail.subject, body=mail.body, language=mail.language,
                       message_id=new_message_id("account", settings.support_domain), in_reply_to=None,
                       references=[], automatic=True, status="pending", attempts=0, next_attempt_at=now,
                       created_at=now)
    session.add(row)
    session.flush()
    return row


class NotYetRecorded(Exception):
    """The ticket's inbound mail is not recorded yet (the event overtook intake's commit): retry shortly."""


def _mail_channel(settings, ticket):
    # A requester without an address (their personal data was erased) is mailed nothing.
    return ticket.get("channel") in settings.mail_channels and bool(ticket["requester"].get("email"))


# The correlation id intake gives the tickets it opens from mail: their acknowledgement is written by the
# poller in the transaction that records the mail (:func:`acknowledge_mail`), not by the event handler,
# which would otherwise race that transaction (and, on PostgreSQL, retry by the hundred in a burst).
MAIL_CORRELATION_PREFIX = "intake-email:"


def acknowledged_by_poller(event):
    """True for the ``ticket_created`` of a ticket intake opened from mail (acknowledged already)."""
    return str(event.get("correlation_id") or "").startswith(MAIL_CORRELATION_PREFIX)


def acknowledge_mail(session, settings, ticket, message_id):
    """The acknowledgement of a ticket opened from the mail ``message_id``, in thread with it."""
    if not _mail_channel(settings, ticket):
        return None
    thread = (message_id, [message_id]) if message_id else (None, [])
    return enqueue(session, settings, "acknowledgement", ticket, "acknowledgement", {}, thread=thread)


def ack_allowance(session, settings, addresses, now):
    """address -> how many more acknowledgements it may get now (``MAIL_ACK_LIMIT`` per ``MAIL_ACK_WINDOW``),
    for the addresses that have a limit. Anyone can put any address in a From (or a web form): without a
    limit the helpdesk mails whoever a forger names, as often as they like (backscatter)."""
    if settings.mail_ack_limit <= 0 or not addresses:
        return None
    since = now - timedelta(seconds=settings.mail_ack_window)
    sent = dict(session.execute(select(OutgoingMail.to_address, func.count()).where(
        OutgoingMail.to_address.in_(list(set(addresses))), OutgoingMail.kind == "acknowledgement",
        OutgoingMail.created_at > since).group_by(OutgoingMail.to_address)).all())
    return {address: settings.mail_ack_limit - sent.get(address, 0) for address in set(addresses)}


def _within_limit(allowance, address):
    if allowance is None:
        return True
    if allowance.get(address, 0) <= 0:
        log.info("no acknowledgement to %s: it had MAIL_ACK_LIMIT of them in the window already", address)
        return False
    allowance[address] -= 1
    return True


def acknowledge_mails(session, settings, opened, now=None):
    """:func:`acknowledge_mail` for a batch: ``opened`` holds ``(ticket, message_id[, to_address])``;
    returns how many were queued (an address over its limit gets none: :func:`ack_allowance`).

    Two Core INSERTs for the batch instead of two ORM objects per ticket: at hundreds of tickets a batch
    the ORM's flush of them cost more than parsing the mail (profile of ``bench/intake_throughput.py``)."""
    now = now or utcnow()
    opened = [(entry[0], entry[1], entry[2] if len(entry) > 2 else None) for entry in opened
              if _mail_channel(settings, entry[0])]
    targets = [to or ticket["requester"]["email"] for ticket, _, to in opened]
    allowance = ack_allowance(session, settings, targets, now)
    mails = [_mail_values(settings, "acknowledgement", ticket, "acknowledgement", {}, True,
                          (message_id, [message_id]) if message_id else (None, []), now, to_address=to)
             for (ticket, message_id, to), target in zip(opened, targets) if _within_limit(allowance, target)]
    insert_rows(session, OutgoingMail.__table__, mails)
    insert_rows(session, ThreadMessageId.__table__, [
        {"message_id": m["message_id"], "ticket_number": m["ticket_number"], "direction": "out", "created_at": now}
        for m in mails])
    return len(mails)


def notify_ticket_created(session, settings, ticket):
    """An acknowledgement with the ticket number, for tickets opened by email or web form."""
    if not _mail_channel(settings, ticket):
        return None
    if ticket["channel"] == "email" and session.scalar(
            select(ThreadMessageId.message_id).where(ThreadMessageId.ticket_number == ticket["number"],
                                                     ThreadMessageId.direction == "in").limit(1)) is None:
        # intake opened it and is about to record the customer's Message-ID (to answer it in thread)
        raise NotYetRecorded(f"the inbound mail of {ticket['number']} is not recorded yet")
    if not _within_limit(ack_allowance(session, settings, [ticket["requester"]["email"]], utcnow()),
                         ticket["requester"]["email"]):
        return None
    return enqueue(session, settings, "acknowledgement", ticket, "acknowledgement", {})


def notify_message_added(session, settings, ticket, message):
    """Every public reply by an agent; internal notes and the customer's own messages never."""
    if message.get("visibility") != "public" or message.get("author_role") not in STAFF_AUTHORS:
        return None
    if not _mail_channel(settings, ticket):
        return None
    return enqueue(session, settings, "reply", ticket, "reply", {"body": message["body"]}, automatic=False)


def notify_status_changed(session, settings, ticket, to_status):
    if to_status not in settings.notify_statuses or not _mail_channel(settings, ticket):
        return None
    template = f"status_{to_status}" if to_status in ("pending", "resolved") else "status_other"
    return enqueue(session, settings, "status", ticket, template, {"status": to_status})


_UTF8 = email.charset.Charset("utf-8")
_UTF8.header_encoding = email.charset.SHORTEST
_UTF8.body_encoding = email.charset.QP  # readable in the raw mail, as EmailMessage's choice was
_UTF8_7BIT = email.charset.Charset("utf-8")
_UTF8_7BIT.body_encoding = None  # ASCII text with short lines goes as it is (7bit)


def _one_line(value):
    """A header value on one line: a customer's name or subject never smuggles in a header of its own."""
    return " ".join(str(value).split())


def _text_header(value, name):
    """A header of free text: as is when ASCII, else RFC 2047 encoded words (folded by the generator)."""
    value = _one_line(value)
    return value if value.isascii() else email.header.Header(value, _UTF8, header_name=name)


def build_message(row, settings):
    """The MIME message of an outgoing row (the same bytes on every attempt, bar the transport).

    Built with the compat32 classes and headers encoded here: ``EmailMessage`` re-parses every header
    through the header registry, the largest part of sending a mail in the profile."""
    body = row.body if row.body.endswith("\n") else row.body + "\n"
    plain = body.isascii() and max(map(len, body.splitlines()), default=0) <= 998  # RFC 5322's line limit
    message = email.mime.text.MIMEText(body, "plain", _UTF8_7BIT if plain else _UTF8)
    message["From"] = formataddr((_one_line(settings.support_name), settings.support_address), charset="utf-8")
    message["To"] = (formataddr((_one_line(row.to_name), row.to_address), charset="utf-8") if row.to_name
                     else row.to_address)
    message["Subject"] = _text_header(row.subject, "Subject")
    message["Date"] = format_datetime(row.created_at)
    message["Message-ID"] = f"<{row.message_id}>"
    if row.in_reply_to:
        message["In-Reply-To"] = f"<{row.in_reply_to}>"
    if row.references:
        message["References"] = " ".join(f"<{r}>" for r in row.references)
    message["Reply-To"] = settings.support_address
    if row.ticket_number:  # account mail is about no ticket
        message["X-Helpdesk-Ticket"] = row.ticket_number
    if row.kind == "account":  # RFC 3834: made by the system, not an answer to a mail
        message["Auto-Submitted"] = "auto-generated"
        message["X-Auto-Response-Suppress"] = "All"
    elif row.automatic:  # RFC 3834: other robots must not answer an automatic mail
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
    message["Content-Language"] = row.language
    return message


_CRLF = "\r\n"


def render_message(row, settings):
    """The bytes sent for an outgoing row: :func:`build_message` flattened with CRLF line ends.

    Written here rather than by ``email``'s generator, which folds every header through a ``Header``
    object (most of the cost of sending a mail in the profile): a short ASCII header is written as it
    is, any other is folded by ``email.header`` exactly as the generator would (78-character lines)."""
    message = build_message(row, settings)
    lines = []
    for name, value in message.raw_items():
        if isinstance(value, str) and value.isascii() and len(name) + 2 + len(value) <= 78:
            lines.append(f"{name}: {value}")
        else:
            folded = value if isinstance(value, email.header.Header) else email.header.Header(value, header_name=name)
            lines.append(f"{name}: {folded.encode(linesep=_CRLF, maxlinelen=78)}")
    lines.append("")
    lines.extend(message.get_payload().splitlines())
    return (_CRLF.join(lines) + _CRLF).encode("ascii")


def smtp_connect(config):
    if config.scheme == "smtps":
        client = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=tls_context(config))
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        if config.starttls:
            client.starttls(context=tls_context(config))
    if config.user:
        client.login(config.user, config.password or "")
    return client


def is_permanent(error):
    """A 5xx answer: the server refuses this mail for good (bad address, policy); retrying won't help."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    code = getattr(error, "smtp_code", None)
    return isinstance(code, int) and 500 <= code < 600 and not isinstance(error, smtplib.SMTPAuthenticationError)


# Recording a mail sent, built once: it runs once per mail (see MailSender._sent).
_MARK_SENT = (update(OutgoingMail.__table__).where(OutgoingMail.__table__.c.id == bindparam("mail_id"))
              .values(status="sent", sent_at=bindparam("sent_at"), attempts=bindparam("sent_attempts"),
                      locked_until=None, last_error=None))


class MailSender:
    """Sends due rows of ``outgoing_mail``. Plain Python: the service runs :meth:`send_due` in a loop."""

    lock_seconds = 120

    def __init__(self, sessions, settings, connect=smtp_connect):
        self.sessions = sessions
        self.engine = sessions.kw["bind"]  # the sessionmaker's engine: _sent writes through Core
        self.settings = settings
        self.connect = connect

    def backoff(self, attempts):
        delays = self.settings.mail_backoff
        return delays[min(attempts, len(delays)) - 1]

    def _claim(self, limit):
        now = utcnow()
        with self.sessions.begin() as session:
            ids = list(session.scalars(
                select(OutgoingMail.id).where(OutgoingMail.status == "pending", OutgoingMail.next_attempt_at <= now,
                                              or_(OutgoingMail.locked_until.is_(None), OutgoingMail.locked_until < now))
                .order_by(OutgoingMail.id).limit(limit)))
            if not ids:
                return []
            # One UPDATE for all of them, conditional per row: of two replicas, each row goes to one, and
            # RETURNING says which (one statement instead of one per row).
            claimed = list(session.scalars(
                update(OutgoingMail).where(
                    OutgoingMail.id.in_(ids), OutgoingMail.status == "pending",
                    or_(OutgoingMail.locked_until.is_(None), OutgoingMail.locked_until < now))
                .values(locked_until=now + timedelta(seconds=self.lock_seconds))
                .returning(OutgoingMail.id).execution_options(synchronize_session=False)))
        if not claimed:
            return []
        with self.sessions() as session:
            return list(session.scalars(select(OutgoingMail).where(OutgoingMail.id.in_(claimed))
                                        .order_by(OutgoingMail.id)))

    def send_due(self, limit=50):
        """Send what is due; returns how many rows were attempted (0: nothing to do)."""
        if self.settings.smtp is None:
            return 0
        rows = self._claim(limit)
        if not rows:
            return 0
        client = None
        try:
            for row in rows:
                try:
                    if client is None:
                        client = self.connect(self.settings.smtp)
                    client.sendmail(self.settings.support_address, [row.to_address],
                                    render_message(row, self.settings))
                except Exception as error:
                    self._failed(row, error)
                    if client is not None and not isinstance(error, (smtplib.SMTPRecipientsRefused,
                                                                     smtplib.SMTPDataError)):
                        _quit(client)
                        client = None
                else:
                    self._sent(row)
        finally:
            if client is not None:
                _quit(client)
            # The batch's email_sent events leave together: woken by each mail's commit, the relay
            # published them one by one, a confirmed round trip and a commit each (0.7 ms of CPU a mail).
            wake_relays(Outbox)
        return len(rows)

    def _sent(self, row):
        """Record ``row`` sent, in a transaction of its own (a crash after it resends no other mail).

        Core statements on a connection, not an ORM session: this runs once per mail, and the session's
        bookkeeping cost more than the statements (0.54-0.62 against 0.22-0.26 ms of CPU per mail, in
        process on SQLite). The row is locked to this sender, so what it read at the claim still holds."""
        now = utcnow()
        attempts = row.attempts + 1
        with self.engine.begin() as connection:
            connection.execute(_MARK_SENT, {"mail_id": row.id, "sent_at": now, "sent_attempts": attempts})
            stage(connection, Outbox, new_event("email_sent", {
                "mail_id": row.id, "kind": row.kind, "ticket_number": row.ticket_number, "to": row.to_address,
                "message_id": row.message_id, "attempts": attempts}, subject=row.ticket_number), wake=False)

    def _failed(self, row, error):
        now = utcnow()
        with self.sessions.begin() as session:
            mail = session.get(OutgoingMail, row.id)
            mail.attempts += 1
            mail.last_error = f"{type(error).__name__}: {error}"[:2000]
            mail.locked_until = None
            if is_permanent(error) or mail.attempts >= self.settings.mail_max_attempts:
                mail.status, mail.next_attempt_at = "failed", None
                log.error("giving up on mail %s to %s after %s attempt(s): %s", mail.id, mail.to_address,
                          mail.attempts, mail.last_error)
            else:
                mail.next_attempt_at = now + timedelta(seconds=self.backoff(mail.attempts))
                log.warning("mail %s to %s failed (attempt %s), retrying at %s: %s", mail.id, mail.to_address,
                            mail.attempts, mail.next_attempt_at.isoformat(), mail.last_error)


def _quit(client):
    try:
        client.quit()
    except Exception:
        try:
            client.close()
        except Exception:
            pass


def outgoing_view(row):
    iso = lambda v: v.isoformat() if v else None  # noqa: E731
    return {"id": row.id, "kind": row.kind, "ticket_number": row.ticket_number, "to": row.to_address,
            "subject": row.subject, "message_id": row.message_id, "status": row.status, "attempts": row.attempts,
            "last_error": row.last_error, "next_attempt_at": iso(row.next_attempt_at),
            "created_at": iso(row.created_at), "sent_at": iso(row.sent_at)}


def retry(session, mail_id):
    """An operator's retry of a failed (or waiting) mail: due now, with a fresh set of attempts."""
    mail = session.get(OutgoingMail, mail_id)
    if mail is None:
        raise errors.mail_not_found(mail_id)
    if mail.status != "sent":
        mail.status, mail.attempts, mail.next_attempt_at, mail.locked_until = "pending", 0, utcnow(), None
    return outgoing_view(mail)
