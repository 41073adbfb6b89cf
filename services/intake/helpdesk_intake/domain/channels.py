"""The web form, phone call records and social messages into tickets. No nameko here.

Each submission is deduplicated like mail: by the channel's own id (a form's submission id, a call id,
a social message id) and a content hash, claimed before the tickets service is called and recorded
``done`` in the transaction that stages ``message_received``. A repeat answers with the first ticket.
"""
import base64
import binascii
import hashlib
import json
import re
from collections import namedtuple
from datetime import timedelta

from sqlalchemy import func, select

from helpdesk_common import authz
from helpdesk_common.contracts.intake import RateLimited, TooLarge
from helpdesk_common.database import utcnow
from helpdesk_common.errors import Conflict, Forbidden, HelpdeskError, NotFound, ValidationFailed, from_wire
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage

from .. import exceptions as errors
from .ingest import SYSTEM, attachment_view, clip, customer_viewer, with_attachment_list
from ..models import Attachment, InboundMessage, Outbox, SocialThread, WebSubmission


File = namedtuple("File", "filename content_type data")  # an upload, decoded; unpacks as (name, type, bytes)


def _hash(data):
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def placeholder_email(kind, identifier, settings):
    """An address for a caller or social user known by no email (tickets need one; never mailed:
    only email and web tickets get mail)."""
    local = re.sub(r"[^a-z0-9]+", "-", identifier.lower()).strip("-")[:40] or "unknown"
    return f"{kind}-{local}@{settings.placeholder_domain or settings.support_domain}"


class Channels:
    def __init__(self, sessions, tickets, store, settings):
        self.sessions = sessions
        self.tickets = tickets
        self.store = store
        self.settings = settings

    # --- the shared path ----------------------------------------------------------------------

    def _take(self, channel, external_id, content_hash, sender, subject, open_or_append, files=()):
        """Dedupe, claim, run ``open_or_append() -> (ticket_number, created)``, record the outcome."""
        now = utcnow()
        with self.sessions.begin() as session:
            row = session.scalar(select(InboundMessage).where(
                InboundMessage.channel == channel,
                (InboundMessage.external_id == external_id) if external_id else
                (InboundMessage.content_hash == content_hash)))
            if row is not None and row.state == "done":
                return {"ticket_number": row.ticket_number, "created": False, "duplicate": True}
            if row is not None and row.claimed_at and row.claimed_at > now - timedelta(seconds=self.settings.claim_lease):
                raise Conflict("This submission is being processed; retry in a minute.", code="in_progress")
            if row is None:
                row = InboundMessage(channel=channel, external_id=external_id, content_hash=content_hash,
                                     state="pending", sender=sender, subject=subject, created_at=now)
                session.add(row)
            row.claimed_at, row.claimed_by = now, "rpc"
            session.flush()
            row_id = row.id
        try:
            number, created = open_or_append()
        except HelpdeskError:
            with self.sessions.begin() as session:
                session.delete(session.get(InboundMessage, row_id))
            raise
        stored = [(f, self.store.put(hashlib.sha256(f[2]).hexdigest(), f[2])) for f in files]
        with self.sessions.begin() as session:
            row = session.get(InboundMessage, row_id)
            row.state, row.outcome, row.ticket_number, row.done_at = ("done", "created" if created else "appended",
                                                                      number, utcnow())
            attachments = [Attachment(inbound_id=row_id, ticket_number=number, filename=name, content_type=ctype,
                                      size=len(data), sha256=hashlib.sha256(data).hexdigest(), path=path,
                                      inline=False, created_at=now) for (name, ctype, data), path in stored]
            session.add_all(attachments)
            session.flush()
            stage(session, Outbox, new_event("message_received", {
                "channel": channel, "ticket_number": number, "created_ticket": created,
                "message_ref": external_id or content_hash, "sender": sender, "subject": subject,
                "attachments": [attachment_view(a, external_id) for a in attachments]}, subject=number))
        return {"ticket_number": number, "created": created, "duplicate": False}

    def _create(self, ticket, key):
        (answer,) = self.tickets.create_tickets([{"ticket": ticket, "viewer": SYSTEM, "idempotency_key": key}])
        if "error" in answer:
            raise from_wire(answer["error"])
        return answer["ticket"]["number"], answer["created"]

    def _create_by_identifiers(self, ticket, key):
        """Open a ticket whose requester carries a phone number or handle, by which the tickets service
        finds the sender's contact. A number it cannot read (a withheld or internal number) must not
        lose the call: the ticket is then opened on the address alone."""
        try:
            return self._create(ticket, key)
        except ValidationFailed as refused:
            extra = [f for f in ("phone", "social") if any(d.get("field", "").startswith(f"requester.{f}")
                                                           for d in refused.details)]
            if not extra:
                raise
            requester = {k: v for k, v in ticket["requester"].items() if k not in extra}
            return self._create({**ticket, "requester": requester}, key)

    # --- web form -------------------------------------------------------------------------------

    def submit_web_form(self, form, viewer):
        """``form``: a validated WebForm; ``viewer``: who submits (a customer submits for themselves)."""
        email = form.requester.email.lower()
        if viewer.role == "customer" and (viewer.email or "").lower() != email:
            raise errors.requester_mismatch("submit requests")
        # The ticket is opened as intake (system), so the customer's limits are applied here: their own
        # address only, no other identifiers, no say in team or priority (helpdesk_common.authz).
        authz.check_own_requester(form.requester, viewer)
        if viewer.role == "customer":
            form = form.model_copy(update=authz.CUSTOMER_DEFAULTS)
        files = self._files(form.attachments)
        payload = form.model_dump(mode="json", exclude={"attachments", "submission_id"})
        content_hash = _hash({**payload, "submission_id": form.submission_id,
                              "files": [hashlib.sha256(f[2]).hexdigest() for f in files]})
        self._rate_limit(email, form.submission_id, content_hash)
        ticket = {k: v for k, v in payload.items() if v not in (None, [], {})}
        ticket["channel"] = "web"
        if files:
            listing = "\n".join(f"- {name} ({ctype}, {len(data)} bytes)" for name, ctype, data in files)
            ticket["description"] = clip(f"{ticket['description']}\n\n[Attachments]\n{listing}", 100_000)
        key = "web:" + (form.submission_id or content_hash)[:190]
        return self._take("web", form.submission_id, content_hash, email, form.subject,
                          lambda: self._create(ticket, key), files)

    def _files(self, uploads):
        """[(filename, content type, bytes)] of a form's base64 uploads, within ``WEB_FORM_MAX_BYTES`` together."""
        files, total = [], 0
        for upload in uploads:
            try:
                data = base64.b64decode(upload.content_base64, validate=True)
            except (binascii.Error, ValueError):
                raise ValidationFailed("An attachment is not valid base64.", details=[
                    {"field": "attachments", "code": "invalid_value", "message": f"{upload.filename}: not base64"}])
            total += len(data)
            files.append(File(upload.filename.replace("/", "_"), upload.content_type, data))
        if total > self.settings.web_form_max_bytes:
            raise TooLarge(f"The attachments add up to {total} bytes; the limit is "
                           f"{self.settings.web_form_max_bytes}.")
        return files

    def submit_web_reply(self, number, reply, viewer):
        """A customer's reply with files to their own ticket (the portal's reply form): the message goes onto
        the ticket as the customer (the tickets service judges whether it is theirs: anyone else gets the
        ticket's 404, and nothing is stored), the files are kept here like a web form's and listed in the
        message, as a mail's are. ``reply_id`` (or the content) makes a repeat one message."""
        if viewer.role != "customer" or not viewer.email:
            raise Forbidden("Replies with files are sent by the ticket's customer; agents attach nothing yet.",
                            code="customers_only")
        email = viewer.email.lower()
        files = self._files(reply.attachments)
        content_hash = _hash({"ticket": number, "body": reply.body, "reply_id": reply.reply_id,
                              "files": [hashlib.sha256(f[2]).hexdigest() for f in files]})
        body = with_attachment_list(reply.body, files)  # listed in the message, as a mail's attachments are
        author = {**customer_viewer(email), "correlation_id": viewer.correlation_id}
        key = "web-reply:" + (reply.reply_id or content_hash)[:180]

        def append():
            self.tickets.add_message(number, {"body": body, "visibility": "public"}, author, idempotency_key=key)
            return number, False

        external_id = f"reply:{reply.reply_id}"[:200] if reply.reply_id else None
        return self._take("web", external_id, content_hash, email, f"Reply on {number}"[:200], append, files)

    def _rate_limit(self, email, submission_id, content_hash):
        now = utcnow()
        window = now - timedelta(seconds=self.settings.web_form_rate_window)
        with self.sessions.begin() as session:
            repeat = session.scalar(select(InboundMessage.id).where(
                InboundMessage.channel == "web",
                (InboundMessage.external_id == submission_id) if submission_id
                else (InboundMessage.content_hash == content_hash)))
            if repeat is not None:
                return  # a repeat answers with its ticket; it does not count again
            count = session.scalar(select(func.count()).select_from(WebSubmission).where(
                WebSubmission.address == email, WebSubmission.at >= window))
            if count >= self.settings.web_form_rate_limit:
                raise RateLimited(f"Too many requests from {email}; try again later.")
            session.add(WebSubmission(address=email, at=now))

    # --- phone ----------------------------------------------------------------------------------

    def record_phone_call(self, call):
        lines = [f"Call {call.direction} from {call.caller_number}"
                 + (f" ({call.caller_name})" if call.caller_name else ""),
                 f"Duration: {call.duration_seconds // 60}:{call.duration_seconds % 60:02d}"]
        if call.agent:
            lines.append(f"Agent: {call.agent}")
        if call.started_at:
            lines.append(f"Started: {call.started_at.isoformat()}")
        if call.recording_url:
            lines.append(f"Recording: {call.recording_url}")
        text = "\n".join(lines) + (f"\n\n{call.notes}" if call.notes else "")
        email = (call.caller_email or placeholder_email("phone", call.caller_number, self.settings)).lower()
        content_hash = _hash(call.model_dump(mode="json"))

        def open_or_append():
            if call.ticket_number:
                self.tickets.add_message(call.ticket_number, {"body": text, "visibility": "public"}, SYSTEM,
                                         idempotency_key=f"phone:{call.call_id}"[:200])
                return call.ticket_number, False
            ticket = {"subject": clip(f"Phone call from {call.caller_name or call.caller_number}", 200),
                      "description": text, "channel": "phone",
                      "requester": {"email": email, "phone": call.caller_number,
                                    **({"name": call.caller_name} if call.caller_name else {})},
                      "tags": ["phone"]}
            if call.language:
                ticket["language"] = call.language
            return self._create_by_identifiers(ticket, f"phone:{call.call_id}"[:200])

        return self._take("phone", call.call_id, content_hash, email, f"Phone call {call.call_id}", open_or_append)

    # --- social ---------------------------------------------------------------------------------

    def receive_social_message(self, message):
        email = (message.email or placeholder_email(message.platform, message.handle, self.settings)).lower()
        content_hash = _hash(message.model_dump(mode="json"))
        external_id = f"{message.platform}:{message.message_id}"[:200]

        def open_or_append():
            with self.sessions() as session:
                thread = session.get(SocialThread, (message.platform, message.thread_id))
            if thread is not None:
                try:
                    ticket = self.tickets.get_ticket(thread.ticket_number, SYSTEM)
                except NotFound:
                    ticket = None
                if ticket is not None and ticket["status"] != "closed":
                    viewer = (customer_viewer(email) if ticket["requester"]["email"] == email else SYSTEM)
                    self.tickets.add_message(thread.ticket_number, {"body": message.text, "visibility": "public"},
                                             viewer, idempotency_key=f"social:{external_id}"[:200])
                    return thread.ticket_number, False
            text = message.text + (f"\n\n{message.url}" if message.url else "")
            ticket = {"subject": clip(f"{message.platform} message from @{message.handle.lstrip('@')}", 200),
                      "description": clip(text, 100_000), "channel": "social",
                      "requester": {"email": email, "name": message.name or message.handle,
                                    "social": {"platform": message.platform, "handle": message.handle}},
                      "tags": [f"social:{message.platform}"]}
            if message.language:
                ticket["language"] = message.language
            number, created = self._create_by_identifiers(ticket, f"social:{external_id}"[:200])
            with self.sessions.begin() as session:
                current = session.get(SocialThread, (message.platform, message.thread_id))
                if current is None:
                    session.add(SocialThread(platform=message.platform, thread_id=message.thread_id,
                                             ticket_number=number, handle=message.handle, created_at=utcnow()))
                else:
                    current.ticket_number = number
            return number, created

        return self._take("social", external_id, content_hash, email, f"{message.platform} {message.thread_id}",
                          open_or_append)
