"""Inbound messages into tickets: dedupe, threading, auto-reply filtering, quarantine. No nameko here.

The flow for a batch of fetched mail (:meth:`Ingestor.ingest`):

1. parse each message; one that cannot be read is quarantined whole, with the reason;
2. in one transaction, look each up by Message-ID and content hash: a message already done is only
   acknowledged again; auto-replies, bounces and bulk mail are recorded as ignored; the rest are
   *claimed* (a ``pending`` row naming this worker), which also stops a second replica taking them;
3. decide where each belongs: the ticket number in the subject, else In-Reply-To/References against
   the Message-IDs intake received and sent, else a new ticket (a reply to a closed ticket follows the
   configured rule) and write that decision into the claim;
4. call the tickets service: one ``create_tickets`` for every new ticket of the batch (each with an
   idempotency key derived from the message, so a retry returns the same ticket), ``add_message`` for
   replies;
5. in one transaction: the claims become ``done`` with their ticket, the Message-IDs and attachments are
   recorded, and ``message_received`` is staged in the outbox.

Only then does the caller mark the messages processed on the IMAP server. A process that dies anywhere
leaves the message unseen on the server and its claim pending: the next poll resumes it (after the
claim's lease when another worker held it). Both calls carry an idempotency key derived from the
message, so a resumed claim gets the ticket or the reply the first attempt made, never a second one.
"""
import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Optional

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from helpdesk_common.bulk import allocate_ids, insert_rows
from helpdesk_common.database import utcnow
from helpdesk_common.errors import Conflict, HelpdeskError, NotFound
from helpdesk_common.events import new_event
from helpdesk_common.failpoints import failpoint
from helpdesk_common.outbox import stage, stage_many

from .. import mailout
from . import authresults, mime, parse
from .. import exceptions as errors
from ..models import Attachment, InboundMessage, Outbox, ParseAttempt, QuarantinedMessage, ThreadMessageId

log = logging.getLogger(__name__)

SYSTEM = {"actor": "intake", "role": "system"}
MAX_DESCRIPTION = 100_000
NO_TEXT = "(no text)"


def is_transient(error):
    """A failure that retrying later can cure (service down, timeout), not a refusal of the request."""
    return not isinstance(error, HelpdeskError)


def message_key(channel, reference):
    """The idempotency key the tickets service gets for a message: stable across retries and restarts."""
    return f"{channel}:" + hashlib.sha256(reference.encode()).hexdigest()[:48]


def customer_viewer(address):
    return {"actor": address, "role": "customer", "email": address}


def attachment_view(row, message_ref=None):
    return {"id": row.id, "ticket_number": row.ticket_number, "filename": row.filename,
            "content_type": row.content_type, "size": row.size, "sha256": row.sha256, "inline": row.inline,
            "content_id": row.content_id, "message_ref": message_ref}


def with_attachment_list(text, attachments, limit=MAX_DESCRIPTION):
    """``text`` and the list of attachments, within ``limit`` characters: the text is cut rather than the
    list (which names full-text.txt when the text was cut already)."""
    if not attachments:
        return clip(text, limit)
    listing = "\n".join(f"- {a.filename} ({a.content_type}, {len(a.data)} bytes)" for a in attachments)
    listing = clip(f"\n\n[Attachments]\n{listing}", limit // 2)
    return clip(text, limit - len(listing)) + listing


def clip(text, limit):
    """``text`` within ``limit`` characters; a note that parsing cut the text (its last line, see
    ``mime.parse``) is kept at the end."""
    if len(text) <= limit:
        return text
    start = text.rfind("\n\n[… ", len(text) - 200)
    note = text[start:] if start >= 0 and limit > 400 else ""
    return text[:limit - 1 - len(note)] + "…" + note




@dataclass
class Incoming:
    """One fetched message: its bytes and the mailbox it came from (None: a retry from quarantine)."""

    raw: bytes
    mailbox: Optional[object] = None
    uid: Optional[str] = None
    size: Optional[int] = None
    headers_only: bool = False  # over MAIL_MAX_BYTES: ``raw`` holds the headers, the body was never fetched
    trusted: bool = False       # an operator's retry vouched for the sender (see authresults)
    _digest: Optional[str] = None

    @property
    def digest(self):
        if self._digest is None:
            self._digest = hashlib.sha256(self.raw).hexdigest()
        return self._digest


@dataclass
class _Work:
    index: int
    item: Incoming
    mail: mime.ParsedMail
    row_id: int
    created_at: object
    action: Optional[str] = None
    ticket_number: Optional[str] = None
    ticket: Optional[dict] = None
    follows: Optional[str] = None
    idempotency_key: Optional[str] = None
    viewer: Optional[dict] = None
    body: Optional[str] = None
    outcome: Optional[str] = None
    failure: Optional[str] = None
    attachments: list = field(default_factory=list)
    code: str = "refused"  # the quarantine's code when the outcome is "quarantine"
    verdict: Optional[object] = None  # authresults.Verdict, once asked


@dataclass
class Batch:
    """A batch between :meth:`Ingestor.prepare` and :meth:`Ingestor.complete`."""

    items: list
    done: list
    work: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    def step(self, name, started):
        self.timings[name] = time.perf_counter() - started


# A batch's statements, built once and run through Core (executemany): the ORM's bulk paths spent more on
# bookkeeping for hundreds of rows than the statements took (in process on SQLite).
_INBOUND = InboundMessage.__table__
_DECIDED = (update(_INBOUND).where(_INBOUND.c.id == bindparam("row_id"))
            .values(action=bindparam("action"), ticket_number=bindparam("ticket_number"), follows=bindparam("follows")))
_ATTEMPTS = ParseAttempt.__table__
_ATTEMPTED = (update(_ATTEMPTS).where(_ATTEMPTS.c.sha256 == bindparam("key"))
              .values(attempts=_ATTEMPTS.c.attempts + 1, last_at=bindparam("last_at")))
_DONE = (update(_INBOUND).where(_INBOUND.c.id == bindparam("row_id"))
         .values(state="done", outcome=bindparam("outcome"), ticket_number=bindparam("ticket_number"),
                 done_at=bindparam("done_at")))


class Ingestor:
    """Turns fetched messages into tickets or replies.

    :param sessions: a sessionmaker on intake's database.
    :param tickets: the tickets service (a nameko RPC proxy, or anything with the same methods).
    :param store: an :class:`~helpdesk_intake.storage.AttachmentStore`.
    :param settings: :class:`~helpdesk_intake.settings.Settings`.
    :param worker_id: names this process in claims, so it resumes its own at once.
    """

    def __init__(self, sessions, tickets, store, settings, worker_id, parser=None):
        self.sessions = sessions
        self.tickets = tickets
        self.store = store
        self.settings = settings
        self.worker_id = worker_id
        # raws -> one result each (ParsedMail, mime.Unparseable or parse.ParseFailure): the service's
        # ParseWorker (a stoppable child process), or in this process.
        self.parser = parser or (lambda raws: parse.in_process(raws, settings.mail_max_text))
        self._categories = None
        self.in_flight = set()  # claims of prepared batches not completed yet: never claimed twice

    # --- the batch ------------------------------------------------------------------------------

    def ingest(self, items):
        """Process ``items``; returns one bool per item: True when it may be marked processed."""
        return self.complete(self.prepare(items))

    def prepare(self, items):
        """The first half of :meth:`ingest`: parse, dedupe and claim, decide where each message goes.

        Split from :meth:`complete` so that the poller prepares the next batch while the tickets
        service works on this one."""
        batch = Batch(items, [False] * len(items))
        started = time.perf_counter()
        parsed, parsed_keys = self._parse(items, batch.done)
        batch.step("parse", started)
        started = time.perf_counter()
        batch.work, batch.duplicates = self._claim(parsed, batch.done, parsed_keys)
        self.in_flight.update(w.row_id for w in batch.work)
        batch.step("claim", started)
        if batch.work:
            started = time.perf_counter()
            self._decide(batch.work)
            batch.step("decide", started)
        return batch

    def complete(self, batch):
        """The second half: create the tickets and add the replies, record the outcome; returns ``done``."""
        try:
            self.call_tickets(batch)
            return self.record(batch)
        finally:
            self.release(batch)

    def call_tickets(self, batch):
        """:meth:`complete`'s first step: the tickets service's calls (nothing is recorded yet).

        Separate so that the poller can have the tickets service work on one batch while the outcome
        of the batch before it is being recorded."""
        if batch.work:
            started = time.perf_counter()
            self._call_tickets(batch.work)
            batch.step("tickets", started)

    def record(self, batch):
        """:meth:`complete`'s second step, after :meth:`call_tickets`: record the outcome, quarantine the
        refused; returns ``done`` (one bool per item: True when it may be marked processed)."""
        try:
            if batch.work:
                started = time.perf_counter()
                self._finish(batch.work, batch.done)
                batch.step("finish", started)
        finally:
            self.release(batch)
        log.debug("ingested %d message(s): %s", len(batch.items),
                  ", ".join(f"{k} {v * 1000:.0f}ms" for k, v in batch.timings.items()))
        for index, first in batch.duplicates:
            batch.done[index] = batch.done[first]
        return batch.done

    # --- parsing, bounded -----------------------------------------------------------------------

    def _parse(self, items, done):
        """``([(index, item, mail)], digests of the messages parsed)``; the rest quarantined or left.

        Too large: quarantined with the headers alone. Otherwise a parse attempt is committed for each
        message before it is parsed (:class:`~helpdesk_intake.models.ParseAttempt`), so that a parse that never
        finishes counts even when the process dies with it. New messages are parsed as a batch; a
        message with an earlier unfinished attempt is a suspect, parsed alone with its own attempt
        committed first (so the mail that happened to share a batch with a poison message is cleared
        by its own parse, and only the poison one counts up); one that reaches ``MAIL_PARSE_ATTEMPTS`` is
        quarantined unparsed. A message the worker could not finish (over budget, the worker died)
        stays unseen on the server and comes back at the next poll."""
        parsed, keys, candidates = [], [], []
        for index, item in enumerate(items):
            if item.headers_only:
                limit = self.settings.mail_max_bytes
                done[index] = self.quarantine(item, f"the message is {item.size} bytes, over the limit of {limit} "
                                                    f"(MAIL_MAX_BYTES): only its headers were fetched",
                                              code="too_large", headers_only=True)
            else:
                candidates.append((index, item))
        if not candidates:
            return parsed, keys
        earlier = self._begin_attempts([item for _, item in candidates])
        fresh, suspects = [], []
        for index, item in candidates:
            previous = earlier.get(item.digest)
            if previous is None:
                fresh.append((index, item))
            elif previous[0] >= self.settings.parse_max_attempts:
                done[index] = self.quarantine(item, f"failed to parse {previous[0]} times: "
                                                    f"{previous[1] or 'the parse never finished (process killed)'}",
                                              code="parse_failed")
                if done[index]:
                    keys.append(item.digest)
            else:
                suspects.append((index, item))
        results = list(zip(fresh, self.parser([item.raw for _, item in fresh]))) if fresh else []
        if suspects:
            # Each suspect's parse is committed and counted alone, and forgotten as soon as it finished: if
            # the next one kills the process, only that one has counted up.
            self._forget_attempts([item.digest for (_, item), result in results
                                   if not isinstance(result, parse.ParseFailure)])
        for index, item in suspects:
            self._begin_attempts([item], count_earlier=True)
            result = self.parser([item.raw])[0]
            if not isinstance(result, parse.ParseFailure):
                self._forget_attempts([item.digest])
            results.append(((index, item), result))
        failed = []
        for (index, item), result in sorted(results, key=lambda r: r[0][0]):
            if isinstance(result, parse.ParseFailure):
                failed.append((item, result.reason))
                continue
            keys.append(item.digest)
            if isinstance(result, mime.Unparseable):
                done[index] = self.quarantine(item, str(result), code="unparseable")
            else:
                parsed.append((index, item, result))
        if failed:
            self._parse_failed(failed)
        return parsed, keys

    def _begin_attempts(self, items, count_earlier=False):
        """Commit a first parse attempt for each of ``items`` never attempted (and, with
        ``count_earlier``, one more for those attempted before); returns digest -> (attempts, last error)
        of those attempted before."""
        now = utcnow()
        unique = {item.digest: item for item in items}
        for attempt in (1, 2):
            try:
                with self.sessions.begin() as session:
                    earlier = {row.sha256: (row.attempts, row.last_error) for row in session.execute(
                        select(ParseAttempt.sha256, ParseAttempt.attempts, ParseAttempt.last_error)
                        .where(ParseAttempt.sha256.in_(list(unique))))}
                    insert_rows(session, _ATTEMPTS, [
                        {"sha256": digest, "mailbox": item.mailbox.name if item.mailbox else None,
                         "uid": str(item.uid)[:20] if item.uid is not None else None, "attempts": 1,
                         "last_error": None, "first_at": now, "last_at": now}
                        for digest, item in unique.items() if digest not in earlier])
                    if earlier and count_earlier:
                        session.execute(_ATTEMPTED, [{"key": digest, "last_at": now} for digest in earlier])
                return earlier
            except IntegrityError:  # another replica began the same message at the same moment
                if attempt == 2:
                    raise
        return {}

    def _forget_attempts(self, digests):
        if digests:
            with self.sessions.begin() as session:
                session.execute(delete(ParseAttempt).where(ParseAttempt.sha256.in_(digests)))

    def _parse_failed(self, failed):
        with self.sessions.begin() as session:
            # Attempts of messages that never came back (deleted on the server meanwhile) are dropped after
            # a week, here, on the rare path where attempts are left behind.
            session.execute(delete(ParseAttempt).where(ParseAttempt.last_at < utcnow() - timedelta(days=7)))
            for item, reason in failed:
                session.execute(update(ParseAttempt).where(ParseAttempt.sha256 == item.digest)
                                .values(last_error=clip(reason, 2000)))
        for item, reason in failed:
            log.warning("could not parse message %s of %s: %s; it stays unseen, tried again at the next poll",
                        item.uid, item.mailbox.name if item.mailbox else "a retry", reason)

    def release(self, batch):
        """Forget ``batch``'s claims as in flight (idempotent): a batch abandoned half-way is resumed
        from its pending claims by a later poll."""
        self.in_flight.difference_update(w.row_id for w in batch.work)

    def _claim(self, parsed, done, parsed_keys=()):
        """Dedupe and claim; returns the messages to work on and the in-batch duplicates. The parse
        attempts of ``parsed_keys`` (messages that parsed) are forgotten in the same transaction."""
        for attempt in (1, 2):
            try:
                return self._claim_once(parsed, done, parsed_keys)
            except IntegrityError:  # another replica claimed one of these at the same moment
                if attempt == 2:
                    raise
        return [], []

    def _claim_once(self, parsed, done, parsed_keys=()):
        now = utcnow()
        lease = timedelta(seconds=self.settings.claim_lease)
        work, duplicates, first_of, fresh = [], [], {}, []
        ids = [mail.message_id for _, _, mail in parsed if mail.message_id]
        hashes = [mail.content_hash for _, _, mail in parsed]
        with self.sessions.begin() as session:
            if parsed_keys:
                session.execute(delete(ParseAttempt).where(ParseAttempt.sha256.in_(list(set(parsed_keys)))))
            existing = list(session.scalars(select(InboundMessage).where(
                InboundMessage.channel == "email",
                or_(InboundMessage.external_id.in_(ids), InboundMessage.content_hash.in_(hashes))))) if parsed else []
            by_id = {row.external_id: row for row in existing if row.external_id}
            by_hash = {row.content_hash: row for row in existing}
            for index, item, mail in parsed:
                keys = [("id", mail.message_id)] if mail.message_id else []
                keys.append(("hash", mail.content_hash))
                first = next((first_of[k] for k in keys if k in first_of), None)
                if first is not None:
                    duplicates.append((index, first))
                    continue
                for key in keys:
                    first_of[key] = index
                row = (by_id.get(mail.message_id) if mail.message_id else None) or by_hash.get(mail.content_hash)
                if row is not None:
                    if row.state == "done":
                        done[index] = True
                    elif row.id in self.in_flight:
                        continue  # an earlier batch of this poll is working on it
                    elif row.claimed_by == self.worker_id or row.claimed_at is None or row.claimed_at < now - lease:
                        taken = session.execute(
                            update(InboundMessage).where(InboundMessage.id == row.id,
                                                         InboundMessage.claimed_at == row.claimed_at)
                            .values(claimed_by=self.worker_id, claimed_at=now)).rowcount
                        if taken:
                            work.append(_Work(index, item, mail, row.id, row.created_at, action=row.action,
                                              ticket_number=row.ticket_number, follows=row.follows,
                                              idempotency_key=row.idempotency_key))
                    continue  # else: another worker holds it; leave it unseen
                mailbox = item.mailbox.name if item.mailbox else None
                reason = mail.automatic
                if reason is None and mail.sender_email == self.settings.support_address.lower():
                    reason = "from_support_address"
                row = dict(channel="email", mailbox=mailbox, external_id=mail.message_id,
                           content_hash=mail.content_hash, sender=mail.sender_email, subject=mail.subject,
                           body=mail.new_text, quoted=mail.quoted_text, html=mail.html, created_at=now,
                           state="pending", outcome=None, reason=None, done_at=None, claimed_by=self.worker_id,
                           claimed_at=now, idempotency_key=None)
                if reason is not None:
                    row.update(state="done", outcome="ignored", reason=reason, done_at=now, claimed_by=None,
                               claimed_at=None)
                    done[index] = True
                    log.info("ignored %s from %s: %s", mail.message_id, mail.sender_email, reason)
                else:
                    row["idempotency_key"] = message_key("email", mail.message_id or mail.content_hash)
                fresh.append((index, item, mail, row))
            # One INSERT for the whole batch, its ids drawn first: per-row flushes were the largest cost of
            # a batch in the profile, and RETURNING in parameter order runs row by row on SQLite.
            if fresh:
                ids = allocate_ids(session, _INBOUND, len(fresh))
                insert_rows(session, _INBOUND, [{"id": row_id, **row} for row_id, (*_, row) in zip(ids, fresh)])
                for (index, item, mail, row), row_id in zip(fresh, ids):
                    if row["state"] == "pending":
                        work.append(_Work(index, item, mail, row_id, now, idempotency_key=row["idempotency_key"]))
        return work, duplicates

    # --- where each message belongs -------------------------------------------------------------

    def categories(self):
        if self._categories is None:
            workflow = self.tickets.get_workflow()
            self._categories = {s["name"]: s["category"] for s in workflow["statuses"]}
        return self._categories

    def find_ticket(self, mail):
        """The ticket ``mail`` answers: by the number in its subject, else by its thread headers."""
        for match in self.settings.ticket_regex.finditer(mail.subject or ""):
            try:
                return self.tickets.get_ticket(match.group(1), SYSTEM)
            except NotFound:
                continue
        referenced = list(dict.fromkeys(mail.in_reply_to + list(reversed(mail.references))))
        if referenced:
            with self.sessions() as session:
                known = {row.message_id: row.ticket_number for row in session.scalars(
                    select(ThreadMessageId).where(ThreadMessageId.message_id.in_(referenced[:100])))}
            for message_id in referenced:
                if message_id in known:
                    try:
                        return self.tickets.get_ticket(known[message_id], SYSTEM)
                    except NotFound:
                        continue
        return None

    def _decide(self, work):
        for w in work:
            if w.action is not None:  # resumed: keep the decision recorded in the claim
                continue
            try:
                ticket = self.find_ticket(w.mail)
                closed = ticket is not None and self.categories().get(ticket["status"]) == "closed"
                # Onto an existing ticket (or reopening it) only as a sender the receiving server vouched
                # for; a closed ticket's follow-up is a new ticket and needs nothing.
                touches = ticket is not None and not (closed and self.settings.closed_rule == "new_ticket")
                if touches and not self.trusted(w):
                    w.failure, w.outcome, w.code = (
                        f"unauthenticated: {w.mail.sender_email} writes to {ticket['number']}, but the receiving "
                        f"server does not vouch for the sender ({w.verdict.reason}); retry with trust_sender "
                        f"to add it to the ticket", "quarantine", "unauthenticated")
                    continue
                if closed:
                    ticket = self._closed(ticket, w)
            except Exception as error:
                w.failure = f"{type(error).__name__}: {error}"
                log.warning("could not look up the thread of %s: %s", w.mail.message_id, w.failure)
                continue
            if ticket is not None:
                w.action, w.ticket_number, w.ticket = "reply", ticket["number"], ticket
            else:
                w.action = "new"
        decided = [{"row_id": w.row_id, "action": w.action, "ticket_number": w.ticket_number, "follows": w.follows}
                   for w in work if w.action is not None and w.failure is None]
        if decided:
            with self.sessions.begin() as session:
                session.execute(_DECIDED, decided)  # one executemany by primary key

    def trusted(self, w):
        """Whether ``w``'s From is vouched for (or need not be: MAIL_REQUIRE_AUTH=false, an operator's retry)."""
        if w.verdict is None:
            if w.item.trusted:
                w.verdict = authresults.Verdict(True, "trusted by an operator")
            else:
                w.verdict = authresults.verdict(w.mail.sender_email, w.mail.auth_results,
                                                self.settings.mail_authserv_id)
        return w.verdict.trusted or not self.settings.mail_require_auth

    def reply_address(self, w):
        """Where answers to ``w`` go when not to its sender: its single Reply-To, if the sender is vouched for
        (an unvouched Reply-To would let anyone have our mail sent anywhere)."""
        return w.mail.reply_to if w.mail.reply_to and self.trusted(w) else None

    def _closed(self, ticket, w):
        """A reply to a closed ticket: reopen it when the rule and workflow allow, else a new ticket."""
        if self.settings.closed_rule == "reopen":
            workflow = self.tickets.get_workflow()
            nexts = next((s["next"] for s in workflow["statuses"] if s["name"] == ticket["status"]), [])
            target = next((s for s in nexts if self.categories().get(s) == "open"), None)
            if target:
                return self.tickets.update_ticket(ticket["number"], {"status": target}, SYSTEM)
        w.follows = ticket["number"]
        return None

    # --- calling the tickets service ------------------------------------------------------------

    def new_ticket_command(self, w):
        mail, mailbox = w.mail, w.item.mailbox
        text = with_attachment_list(mail.new_text or mail.text or NO_TEXT, mail.attachments)
        language = mail.language if mail.language in ("en", "nl", "sv") else (mailbox.language if mailbox else None)
        ticket = {"subject": clip(mime.strip_reply_prefixes(mail.subject) or mail.subject or "(no subject)", 200),
                  "description": clip(text, MAX_DESCRIPTION),
                  "requester": {"email": mail.sender_email,
                                **({"name": clip(mail.sender_name, 200)} if mail.sender_name else {})},
                  "channel": "email"}
        if mailbox is not None and mailbox.team:
            ticket["team"] = mailbox.team
        if language:
            ticket["language"] = language
        if w.follows:
            ticket["tags"] = [f"follows:{w.follows}"]
        return ticket

    def _call_tickets(self, work):
        fresh = [w for w in work if w.action == "new" and w.failure is None]
        if fresh:
            requests = [{"ticket": self.new_ticket_command(w), "idempotency_key": w.idempotency_key,
                         "viewer": {**SYSTEM, "correlation_id": mailout.MAIL_CORRELATION_PREFIX + w.idempotency_key}}
                        for w in fresh]
            try:
                answers = self.tickets.create_tickets(requests)
            except Exception as error:
                self._failed(fresh, error)
            else:
                for w, answer in zip(fresh, answers):
                    if "error" in answer:
                        w.failure = "the tickets service refused the ticket: " + answer["error"].get("message", "")
                        w.outcome = "quarantine"
                    else:
                        w.ticket, w.ticket_number, w.outcome = answer["ticket"], answer["ticket"]["number"], "created"
        for w in work:
            if w.action != "reply" or w.failure is not None:
                continue
            try:
                self._append(w)
            except Exception as error:
                self._failed([w], error)
        failpoint("intake.after_tickets_call")

    def _failed(self, work, error):
        for w in work:
            if is_transient(error):
                w.failure = f"{type(error).__name__}: {error}"  # retried at the next poll
            else:
                w.failure, w.outcome = f"the tickets service refused the message: {error}", "quarantine"
        log.warning("tickets service call failed for %d message(s): %s", len(work), error)

    def _append(self, w):
        mail = w.mail
        ticket = w.ticket or self.tickets.get_ticket(w.ticket_number, SYSTEM)
        body = with_attachment_list(mail.new_text or mail.text or NO_TEXT, mail.attachments, MAX_DESCRIPTION - 600)
        if ticket["requester"]["email"].lower() == mail.sender_email:
            viewer = customer_viewer(mail.sender_email)
        else:  # a colleague in copy answered: keep who it was
            name = f"{mail.sender_name} <{mail.sender_email}>" if mail.sender_name else mail.sender_email
            body, viewer = f"From: {name}\n\n{body}", SYSTEM
        body = clip(body, MAX_DESCRIPTION)
        # The key derived from the message (its Message-ID) makes a resumed claim's second call return the
        # reply the first call added, whatever happened in between.
        self.tickets.add_message(w.ticket_number, {"body": body, "visibility": "public"}, viewer,
                                 idempotency_key=w.idempotency_key)
        w.outcome = "appended"

    # --- recording the outcome ------------------------------------------------------------------

    def _finish(self, work, done):
        finished = [w for w in work if w.failure is None and w.outcome in ("created", "appended")]
        refused = [w for w in work if w.outcome == "quarantine"]
        stored = {}
        for w in finished:
            for attachment in w.mail.attachments:
                stored[attachment.sha256] = self.store.put(attachment.sha256, attachment.data)
        now = utcnow()
        if finished:
            self._record_done(finished, stored, now)
            for w in finished:
                done[w.index] = True
        for w in refused:
            with self.sessions.begin() as session:
                row = session.get(InboundMessage, w.row_id)
                session.delete(row)  # the quarantine keeps it now; a retry claims it afresh
            done[w.index] = self.quarantine(w.item, w.failure, w.mail, code=w.code)

    def _record_done(self, finished, stored, now):
        """One transaction for the batch: claims done, Message-IDs, attachments, ``message_received``.

        Written as a handful of executemany statements rather than per-row ORM work: at hundreds of
        messages a batch the ORM's per-object bookkeeping cost more than parsing the mail."""
        with self.sessions.begin() as session:
            # Only the rows still pending are this batch's to record: a batch abandoned by its poll (and
            # resumed by the next) may finish after all, and the second to finish must add nothing (no
            # second acknowledgement). The conditional UPDATE decides under the row lock.
            won = set(session.scalars(update(_INBOUND).where(
                _INBOUND.c.id.in_([w.row_id for w in finished]), _INBOUND.c.state == "pending")
                .values(state="done", done_at=now).returning(_INBOUND.c.id)))
            finished = [w for w in finished if w.row_id in won]
            if not finished:
                return
            session.execute(_DONE, [{"row_id": w.row_id, "outcome": w.outcome, "ticket_number": w.ticket_number,
                                     "done_at": now} for w in finished])
            ids = {w.mail.message_id for w in finished if w.mail.message_id}
            known = set(session.scalars(select(ThreadMessageId.message_id).where(
                ThreadMessageId.message_id.in_(ids)))) if ids else set()
            threads = []
            for w in finished:
                if w.mail.message_id and w.mail.message_id not in known:
                    known.add(w.mail.message_id)
                    threads.append({"message_id": w.mail.message_id, "ticket_number": w.ticket_number,
                                    "direction": "in", "created_at": now, "reply_to": self.reply_address(w)})
            insert_rows(session, ThreadMessageId.__table__, threads)
            # With the record, so that the acknowledgement is sent exactly once. (Its own, later time: the
            # thread's order, by time, puts the customer's mail before our answer.)
            # To the Reply-To address when the sender is vouched for (where they asked answers to go).
            mailout.acknowledge_mails(session, self.settings, [
                (w.ticket, w.mail.message_id, self.reply_address(w))
                for w in finished if w.outcome == "created" and w.ticket is not None], now=now)
            files = {}
            for w in finished:
                files[w.row_id] = [Attachment(
                    inbound_id=w.row_id, ticket_number=w.ticket_number, filename=a.filename[:255],
                    content_type=a.content_type[:100], size=len(a.data), sha256=a.sha256, path=stored[a.sha256],
                    content_id=(a.content_id or None) and a.content_id[:300], inline=a.inline, created_at=now)
                    for a in w.mail.attachments]
                session.add_all(files[w.row_id])
            session.flush()  # attachment ids, for the events
            events = []
            for w in finished:
                mail, mailbox = w.mail, w.item.mailbox
                ref = mail.message_id or mail.content_hash
                events.append(new_event("message_received", {
                    "channel": "email", "ticket_number": w.ticket_number, "created_ticket": w.outcome == "created",
                    "message_ref": ref, "sender": mail.sender_email, "subject": mail.subject,
                    "mailbox": mailbox.name if mailbox else None, "team": mailbox.team if mailbox else None,
                    "attachments": [attachment_view(r, ref) for r in files[w.row_id]], "follows": w.follows,
                }, subject=w.ticket_number))
            stage_many(session, Outbox, events)

    # --- quarantine -----------------------------------------------------------------------------

    def quarantine(self, item, reason, mail=None, code="unparseable", headers_only=False):
        """Keep ``item`` whole with ``reason`` (and its stable ``code``); True once it is safely stored (or
        already was)."""
        digest = item.digest
        try:
            with self.sessions.begin() as session:
                row = session.scalar(select(QuarantinedMessage).where(QuarantinedMessage.sha256 == digest))
                if row is not None:
                    row.reason, row.code, row.status = clip(reason, 4000), code, "held"
                    return True
                row = QuarantinedMessage(
                    channel="email", mailbox=item.mailbox.name if item.mailbox else None, sha256=digest,
                    raw=item.raw, reason=clip(reason, 4000), subject=mail.subject if mail else _peek_subject(item.raw),
                    sender=mail.sender_email if mail else _peek_sender(item.raw), status="held", attempts=0,
                    created_at=utcnow(), code=code, headers_only=headers_only)
                session.add(row)
                session.flush()
                stage(session, Outbox, new_event("message_quarantined", {
                    "quarantine_id": row.id, "channel": "email", "mailbox": row.mailbox, "reason": row.reason,
                    "sha256": digest, "code": code}))
            log.warning("quarantined a message from %s: %s", row.mailbox, reason)
            return True
        except IntegrityError:  # quarantined by another worker at the same moment
            return True
        except Exception:
            log.exception("could not quarantine a message; it stays on the server")
            return False

    def retry_quarantined(self, quarantine_id, trust_sender=False, viewer=None):
        """Run a quarantined message through intake again; returns the quarantine row's view.

        ``trust_sender``: an operator vouches for the sender (an unauthenticated reply goes onto its
        ticket). A message kept with its headers only, or discarded, cannot be retried."""
        with self.sessions() as session:
            row = session.get(QuarantinedMessage, quarantine_id)
            if row is None:
                raise errors.quarantine_not_found(quarantine_id)
            raw, mailbox_name, headers_only, status = row.raw, row.mailbox, row.headers_only, row.status
        if headers_only:
            raise Conflict("Only the headers of this message were fetched (it is over MAIL_MAX_BYTES); its body "
                           "is still on the mail server. Discard it here and handle it there.", code="headers_only")
        if status == "discarded":
            raise Conflict("This message was discarded.", code="quarantine_discarded")
        mailbox = next((m for m in self.settings.mailboxes if m.name == mailbox_name), None)
        with self.sessions.begin() as session:
            row = session.get(QuarantinedMessage, quarantine_id)
            row.attempts += 1
            row.retried_at = utcnow()
            if viewer:
                row.decided_by, row.decided_at = str(viewer.get("actor") or "")[:254] or None, row.retried_at
        item = Incoming(raw=raw, mailbox=mailbox, trusted=bool(trust_sender))
        (mail,) = self.parser([raw])  # in the worker, within the budget: it may be the hostile one
        if isinstance(mail, parse.ParseFailure):
            self.quarantine(item, f"failed to parse again: {mail.reason}", code="parse_failed")
            return quarantine_view(self._quarantine_row(quarantine_id))
        if isinstance(mail, mime.Unparseable):
            self.quarantine(item, str(mail), code="unparseable")
            return quarantine_view(self._quarantine_row(quarantine_id))
        done = [False]
        work, _ = self._claim([(0, item, mail)], done)
        if work:
            self._decide(work)
            self._call_tickets(work)
            self._finish(work, done)
        with self.sessions.begin() as session:
            row = session.get(QuarantinedMessage, quarantine_id)
            inbound = session.scalar(select(InboundMessage).where(
                InboundMessage.channel == "email", InboundMessage.content_hash == mail.content_hash,
                InboundMessage.state == "done"))
            if inbound is not None:
                row.status, row.ticket_number = "resolved", inbound.ticket_number
            elif work and work[0].failure:
                row.reason = clip(work[0].failure, 4000)
        return quarantine_view(self._quarantine_row(quarantine_id))

    def discard_quarantined(self, quarantine_id, viewer):
        """An operator decided the message is not to become a ticket: recorded (who, when), kept."""
        with self.sessions.begin() as session:
            row = session.get(QuarantinedMessage, quarantine_id)
            if row is None:
                raise errors.quarantine_not_found(quarantine_id)
            if row.status == "resolved":
                raise Conflict(f"This message became {row.ticket_number} already.", code="quarantine_resolved")
            if row.status != "discarded":
                row.status, row.decided_at = "discarded", utcnow()
                row.decided_by = str((viewer or {}).get("actor") or "")[:254] or None
        return quarantine_view(self._quarantine_row(quarantine_id))

    def read_quarantined(self, quarantine_id):
        """What an operator reads of a quarantined message: its headers, its parts, the text that could be
        read (parsed in the worker, within the budget) and the reason."""
        row = self._quarantine_row(quarantine_id)
        if row is None:
            raise errors.quarantine_not_found(quarantine_id)
        view = quarantine_view(row)
        view["headers"] = _peek_headers(row.raw)
        view["parts"], view["text"], view["parse_error"] = [], None, None
        if row.headers_only:
            view["parse_error"] = "only the headers were fetched"
            return view
        (mail,) = self.parser([row.raw])
        if isinstance(mail, parse.ParseFailure):
            view["parse_error"] = mail.reason
        elif isinstance(mail, mime.Unparseable):
            view["parse_error"] = str(mail)
        else:
            view["text"] = clip(mail.text, self.settings.mail_max_text)
            view["parts"] = ([{"content_type": "text/html", "filename": None, "size": len(mail.html)}]
                             if mail.html else []) + [
                {"content_type": a.content_type, "filename": a.filename, "size": len(a.data)} for a in mail.attachments]
        return view

    def _quarantine_row(self, quarantine_id):
        with self.sessions() as session:
            return session.get(QuarantinedMessage, quarantine_id)


def quarantine_view(row):
    return {"id": row.id, "channel": row.channel, "mailbox": row.mailbox, "reason": row.reason,
            "status": row.status, "size": len(row.raw), "sha256": row.sha256, "subject": row.subject,
            "sender": row.sender, "attempts": row.attempts, "ticket_number": row.ticket_number,
            "created_at": row.created_at.isoformat(), "retried_at": row.retried_at.isoformat() if row.retried_at else None,
            "code": row.code, "headers_only": bool(row.headers_only), "decided_by": row.decided_by,
            "decided_at": row.decided_at.isoformat() if row.decided_at else None}


def _head(raw):
    """The header block of a raw message (at most 256 KB of it): read without the MIME parser."""
    head = raw[:262144]
    for separator in (b"\r\n\r\n", b"\n\n"):
        if separator in head:
            head = head.split(separator, 1)[0]
    return head


def _peek_headers(raw, limit=200):
    """``[[name, value]]`` of the first ``limit`` headers, unfolded, each value at most 2,000 characters."""
    headers = []
    for line in _head(raw).decode("utf-8", "replace").replace("\r\n", "\n").split("\n"):
        if line[:1] in (" ", "\t") and headers:
            if len(headers[-1][1]) < 2000:
                headers[-1][1] = (headers[-1][1] + " " + line.strip())[:2000]
        elif ":" in line:
            if len(headers) >= limit:
                break
            name, _, value = line.partition(":")
            headers.append([name.strip()[:100], value.strip()[:2000]])
    return headers


def _peek(raw, name):
    value = next((v for n, v in _peek_headers(raw) if n.lower() == name), None)
    return mime.decode_header(value)[:500] if value else None


def _peek_sender(raw):
    try:
        value = _peek(raw, "from")
        return value.rpartition("<")[2].strip(" >").lower()[:254] or None if value else None
    except Exception:
        return None


def _peek_subject(raw):
    try:
        return _peek(raw, "subject")
    except Exception:
        return None
