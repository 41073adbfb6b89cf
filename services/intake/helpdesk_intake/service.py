"""The intake nameko service: thin entrypoints over ``ingest``, ``mailout`` and ``channels``."""
import base64
import logging
import os
import socket
import uuid

import eventlet
from helpdesk_common.adapters.queues import RpcProxy, rpc
from prometheus_client import Counter
from sqlalchemy import select, text

from helpdesk_common.adapters.consumer import reliable_batch_handler, reliable_handler
from helpdesk_common.adapters.database import Database
from helpdesk_common.adapters.metrics import EntrypointMetrics
from helpdesk_common.adapters.relay import OutboxRelay
from helpdesk_common.contracts import validate
from helpdesk_common.contracts.chat import ChatPost, ChatQuery, EntriesQuery, NewChat
from helpdesk_common.contracts.contacts import PersonalDataQuery
from helpdesk_common.contracts.intake import (AccountMail, OutgoingQuery, PhoneCall, QuarantineQuery,
                                              QuarantineRetry, SocialMessage, WebForm, WebReply)
from helpdesk_common.contracts.tickets import Viewer
from helpdesk_common.database import utcnow
from helpdesk_common.errors import EXPECTED_ERRORS, Forbidden, NotFound, ValidationFailed
from helpdesk_common.inbox import first_deliveries, first_delivery
from helpdesk_common.outbox import forget_published

from . import exceptions as errors
from . import mailout, personal_data, poller, social
from .domain.channels import Channels
from .domain import chat as chat_domain
from .domain.chat import ChatDesk
from .dependencies import DB_URL, ChatConfig, IntakeSettings, Mailboxes, OutgoingMailRelay, Parser
from .entrypoints import chat_sweep, mailbox_poll, retention_sweep
from .domain.ingest import Ingestor, attachment_view, quarantine_view
from .models import Attachment, InboundMessage, OutgoingMail, Outbox, ProcessedEvent, QuarantinedMessage
from .storage import AttachmentStore

log = logging.getLogger(__name__)

# Seconds before each retry of a social reply the connector did not take; parked after the last attempt.
SOCIAL_REPLY_BACKOFF = (2, 10, 60, 300, 900)
SOCIAL_REPLY_ATTEMPTS = 6
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
PURGED = Counter("helpdesk_intake_retention_purged_total",
                 "Mail texts, quarantined raw copies and attachments removed after their retention", ["kind"])


def _int_id(value, what):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{what} must be an integer.", details=[{"field": what, "code": "wrong_type",
                                                                        "message": "expected an integer"}])
    return value


class IntakeService:
    name = "intake"

    db = Database(DB_URL)
    outbox = OutboxRelay(Outbox, DB_URL, source="intake")
    mail_relay = OutgoingMailRelay()
    settings = IntakeSettings()
    mailboxes = Mailboxes()
    parser = Parser()
    chat_settings = ChatConfig()
    tickets = RpcProxy("tickets")
    metrics = EntrypointMetrics()

    def _ingestor(self):
        return Ingestor(self.db, self.tickets, AttachmentStore(self.settings.attachments_dir), self.settings,
                        WORKER_ID, parser=self.parser)

    def _chat(self):
        # nameko 2's RpcProxy has no timeout: a chat request must not hang while tickets is away.
        patience = self.chat_settings.tickets_patience
        return ChatDesk(self.db, self.tickets, self.chat_settings, patience=lambda: eventlet.Timeout(patience, False))

    def _channels(self):
        return Channels(self.db, self.tickets, AttachmentStore(self.settings.attachments_dir), self.settings)

    # --- email in -------------------------------------------------------------------------------

    @mailbox_poll
    def poll_mailboxes(self):
        """Read every mailbox once. A failing mailbox is logged and retried at the next poll; never fatal."""
        ingestor = self._ingestor()
        for mailbox in self.mailboxes:
            # nameko 2's RpcProxy has no timeout: a call whose answer never comes must not stall the
            # poller for good. Claims are resumable, so abandoning a poll loses nothing.
            timeout = eventlet.Timeout(self.settings.poll_timeout)
            try:
                poller.drain(mailbox, ingestor, self.settings.imap_batch_size, max_bytes=self.settings.mail_max_bytes)
            except eventlet.Timeout as expired:
                if expired is not timeout:
                    raise
                log.error("polling %s took over %ss; abandoned, resumed at the next poll", mailbox.config.name,
                          self.settings.poll_timeout)
                mailbox.close()
            except Exception:
                log.exception("polling %s failed; trying again at the next poll", mailbox.config.name)
                mailbox.close()
            finally:
                timeout.cancel()

    # --- email out ------------------------------------------------------------------------------

    # Tickets intake opened from mail were acknowledged when the mail was recorded: left out of the batch
    # (a batch of them only is acknowledged without a worker). The others, a relay batch at a time, in one
    # transaction; one not ready yet (NotYetRecorded) splits the batch, and each is retried alone.
    # Quick retries first (a mail not recorded yet), then long ones: with five attempts (8.5 s of retries) a
    # PostgreSQL restart under load parked acknowledgements in the soak (tests/soak.py); these ride out about
    # 3.5 minutes of a database or broker away before an event is parked.
    @reliable_batch_handler("tickets", "ticket_created", backoff=(0.5, 1, 2, 5, 15, 60, 120), max_attempts=8,
                            skip=mailout.acknowledged_by_poller)
    def on_ticket_created(self, events):
        with self.db.begin() as session:
            fresh = first_deliveries(session, ProcessedEvent, [event["id"] for event in events],
                                     "intake.on_ticket_created")
            for event in events:
                if event["id"] in fresh:
                    fresh.discard(event["id"])  # a twin later in the batch is a repeat
                    mailout.notify_ticket_created(session, self.settings, event["data"]["ticket"])

    @reliable_handler("tickets", "message_added")
    def on_message_added(self, event):
        with self.db.begin() as session:
            if first_delivery(session, ProcessedEvent, event["id"], "intake.on_message_added"):
                mailout.notify_message_added(session, self.settings, event["data"]["ticket"],
                                             event["data"]["message"])
                social.queue_reply(session, self.settings, event["data"]["ticket"], event["data"]["message"])
                chat_domain.relay_to_open_chat(session, event["data"]["ticket"], event["data"]["message"])

    @reliable_handler("intake", "social_reply_queued", max_attempts=SOCIAL_REPLY_ATTEMPTS,
                      backoff=SOCIAL_REPLY_BACKOFF)
    def deliver_social_reply(self, event):
        """POST a public reply to the social connector; a failure is retried, then parked."""
        social.deliver_once(self.db, self.settings, event)

    @reliable_handler("tickets", "status_changed")
    def on_status_changed(self, event):
        with self.db.begin() as session:
            if first_delivery(session, ProcessedEvent, event["id"], "intake.on_status_changed"):
                mailout.notify_status_changed(session, self.settings, event["data"]["ticket"],
                                              event["data"]["to_status"])

    # --- operators ------------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_quarantine(self, query=None):
        filters = validate(QuarantineQuery, query or {})
        with self.db() as session:
            statement = select(QuarantinedMessage).order_by(QuarantinedMessage.id.desc()).limit(filters.limit)
            if filters.status:
                statement = statement.where(QuarantinedMessage.status == filters.status)
            return [quarantine_view(row) for row in session.scalars(statement)]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def retry_quarantined(self, quarantine_id, options=None, viewer=None):
        """``options``: ``{"trust_sender": true}`` vouches for the sender of an unauthenticated reply."""
        options = validate(QuarantineRetry, options or {})
        return self._ingestor().retry_quarantined(_int_id(quarantine_id, "quarantine_id"),
                                                  trust_sender=options.trust_sender, viewer=viewer)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def read_quarantined(self, quarantine_id):
        """Headers, parts, the text that could be read (parsed within the budget) and the reason."""
        return self._ingestor().read_quarantined(_int_id(quarantine_id, "quarantine_id"))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def quarantined_raw(self, quarantine_id):
        """The message as it came (base64; only its headers when it was over MAIL_MAX_BYTES)."""
        quarantine_id = _int_id(quarantine_id, "quarantine_id")
        with self.db() as session:
            row = session.get(QuarantinedMessage, quarantine_id)
            if row is None:
                raise errors.quarantine_not_found(quarantine_id)
            return {"id": row.id, "filename": f"quarantine-{row.id}.eml", "headers_only": bool(row.headers_only),
                    "data": base64.b64encode(row.raw).decode("ascii")}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def discard_quarantined(self, quarantine_id, viewer=None):
        """Recorded with who discarded it and when; the message is kept."""
        return self._ingestor().discard_quarantined(_int_id(quarantine_id, "quarantine_id"), viewer or {})

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_outgoing(self, query=None):
        filters = validate(OutgoingQuery, query or {})
        with self.db() as session:
            statement = select(OutgoingMail).order_by(OutgoingMail.id.desc()).limit(filters.limit)
            if filters.status:
                statement = statement.where(OutgoingMail.status == filters.status)
            if filters.ticket_number:
                statement = statement.where(OutgoingMail.ticket_number == filters.ticket_number)
            return [mailout.outgoing_view(row) for row in session.scalars(statement)]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def send_account_mail(self, mail):
        """Queue a mail about a person's account (the gateway's password-reset and invitation links)."""
        mail = validate(AccountMail, mail)
        with self.db.begin() as session:
            return {"id": mailout.enqueue_account_mail(session, self.settings, mail).id}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def retry_outgoing(self, mail_id):
        with self.db.begin() as session:
            return mailout.retry(session, _int_id(mail_id, "mail_id"))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_attachments(self, ticket_number):
        with self.db() as session:
            rows = session.execute(select(Attachment, InboundMessage.external_id)
                                   .join(InboundMessage, Attachment.inbound_id == InboundMessage.id)
                                   .where(Attachment.ticket_number == str(ticket_number)).order_by(Attachment.id))
            return [attachment_view(row, ref) for row, ref in rows]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def read_attachment(self, ticket_number, attachment_id):
        """One attachment of the ticket with its content (base64); the caller checked the ticket is visible."""
        with self.db() as session:
            row = session.scalar(select(Attachment).where(Attachment.id == _int_id(attachment_id, "attachment_id"),
                                                          Attachment.ticket_number == str(ticket_number)))
            if row is None:
                raise NotFound(f"Ticket {ticket_number} has no attachment {attachment_id}.", code="attachment_not_found")
            filename, content_type, path = row.filename, row.content_type, row.path
        data = AttachmentStore(self.settings.attachments_dir).read(path)
        return {"filename": filename, "content_type": content_type, "content": base64.b64encode(data).decode()}

    @rpc
    def get_channels(self):
        """The channel configuration, without secrets."""
        return self.settings.describe()

    # --- channels through the gateway -----------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def submit_web_form(self, form, viewer):
        command, who = validate(WebForm, form), validate(Viewer, viewer, prefix="viewer.")
        return self._channels().submit_web_form(command, who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def submit_web_reply(self, ticket_number, reply, viewer):
        """A customer's reply with files to their ticket (the portal's reply form)."""
        command, who = validate(WebReply, reply), validate(Viewer, viewer, prefix="viewer.")
        if not isinstance(ticket_number, str) or not 1 <= len(ticket_number) <= 40:
            raise ValidationFailed("ticket_number must be a ticket's number.", details=[
                {"field": "ticket_number", "code": "invalid_value", "message": "expected 1-40 characters"}])
        return self._channels().submit_web_reply(ticket_number, command, who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def record_phone_call(self, call):
        return self._channels().record_phone_call(validate(PhoneCall, call, strict=False))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def receive_social_message(self, message):
        return self._channels().receive_social_message(validate(SocialMessage, message))

    # --- live chat (the gateway streams; see chat.py) -------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def start_chat(self, chat, viewer):
        return self._chat().start(validate(NewChat, chat), validate(Viewer, viewer, prefix="viewer."))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_chats(self, query, viewer):
        filters, who = validate(ChatQuery, query or {}), validate(Viewer, viewer, prefix="viewer.")
        if who.role not in ("admin", "agent"):
            raise errors.agents_only("see the chats waiting.")
        return self._chat().waiting(filters.state, filters.limit, viewer=who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def chat_entries(self, chat_id, query, viewer, token=None):
        filters, who = validate(EntriesQuery, query or {}), validate(Viewer, viewer, prefix="viewer.")
        return self._chat().entries(chat_id, who, token, filters.after, filters.limit)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def post_chat_message(self, chat_id, post, viewer, token=None):
        command, who = validate(ChatPost, post), validate(Viewer, viewer, prefix="viewer.")
        return self._chat().post(chat_id, command.body, who, token)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def join_chat(self, chat_id, viewer):
        return self._chat().join(chat_id, validate(Viewer, viewer, prefix="viewer."))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def leave_chat(self, chat_id, viewer, token=None):
        return self._chat().leave(chat_id, validate(Viewer, viewer, prefix="viewer."), token)

    @reliable_handler("intake", "chat_message_posted")
    def transcribe_chat(self, event):
        """Off the post's path: the message goes onto the chat's ticket once it is announced."""
        self._chat().transcribe(event["data"]["chat"]["id"])

    @chat_sweep
    def sweep_chats(self):
        self._chat().settle()

    # --- personal data (export and erasure on request; retention) --------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def personal_data(self, query, viewer):
        """What intake holds about a person (their identifiers and tickets, from the tickets service)."""
        query, who = validate(PersonalDataQuery, query), validate(Viewer, viewer, prefix="viewer.")
        if who.role not in ("admin", "system"):
            raise Forbidden("Only admins may export a person's data.", code="admins_only")
        with self.db() as session:
            return personal_data.export(session, query.emails, query.ticket_numbers, query.socials)

    @reliable_handler("tickets", "contact_erased")
    def on_contact_erased(self, event):
        data, files = event["data"], []
        with self.db.begin() as session:
            if not first_delivery(session, ProcessedEvent, event["id"], "intake.on_contact_erased"):
                return
            counts = personal_data.erase(session, data.get("emails", []), data.get("ticket_numbers", []),
                                         data.get("socials", []), files)
            forget_published(session, Outbox)  # relayed message and chat events carried the person's text
        personal_data.remove_files(AttachmentStore(self.settings.attachments_dir), files)
        log.info("erased contact %s: %s", data.get("contact_id"), counts)

    @retention_sweep
    def purge_expired(self):
        """Mail text and attachments past their retention (RAW_MAIL_RETENTION_DAYS, ATTACHMENT_RETENTION_DAYS)."""
        settings, files = self.settings, []
        if settings.raw_mail_retention_days <= 0 and settings.attachment_retention_days <= 0:
            return None
        with self.db.begin() as session:
            counts = personal_data.purge_expired(session, utcnow(), settings.raw_mail_retention_days,
                                                 settings.attachment_retention_days, files)
        personal_data.remove_files(AttachmentStore(settings.attachments_dir), files)
        for kind, count in counts.items():
            PURGED.labels(kind).inc(count)
        if any(counts.values()):
            log.info("retention purged %s", counts)
        return counts

    @rpc
    def ping(self):
        with self.db() as session:
            session.execute(text("SELECT 1"))
        return {"service": self.name, "ok": True}
