"""What intake holds about a person, exported and erased on request, and raw mail and attachments purged
after their retention. Plain functions of a session and the attachment store; no nameko in here.

A person is found by their addresses (mail they sent, chats they started, web forms, mail to them) and by
their tickets (attachments, outgoing mail, social threads, chats that became tickets). Erasing keeps the
rows that make dedupe and counts work (an inbound message's hashes and outcome, a chat's times and
outcome, an outgoing mail's kind and status) and removes every name, address and text.
"""
import base64
import os
from datetime import timedelta

from sqlalchemy import delete, or_, select, update

from .models import (Attachment, ChatEntry, ChatSession, ErasedTicket, InboundMessage, OutgoingMail,
                     QuarantinedMessage, SocialThread, ThreadMessageId, WebSubmission)

ERASED = "(erased)"


def _iso(moment):
    return moment.isoformat() if moment is not None else None


def _lower(values):
    return sorted({v.lower() for v in values if v})


def _inbound(emails, numbers):
    return or_(InboundMessage.sender.in_(emails), InboundMessage.ticket_number.in_(numbers))


def _chats(emails, numbers):
    return or_(ChatSession.customer_email.in_(emails), ChatSession.ticket_number.in_(numbers))


def _outgoing(emails, numbers):
    return or_(OutgoingMail.to_address.in_(emails), OutgoingMail.ticket_number.in_(numbers))


def _quarantine(emails, numbers):
    return or_(QuarantinedMessage.sender.in_(emails), QuarantinedMessage.ticket_number.in_(numbers))


def export(session, emails, numbers, socials=()):
    """Everything intake holds about the person with ``emails`` and tickets ``numbers``: the messages they
    sent (their text as read, and raw when quarantined), attachments (metadata; the files are at
    ``/api/v1/tickets/{number}/attachments/{id}``), mail sent to them, chats, web forms, social threads."""
    emails, numbers = _lower(emails), list(numbers)
    inbound = list(session.scalars(select(InboundMessage).where(_inbound(emails, numbers)).order_by(InboundMessage.id)))
    inbound_ids = [m.id for m in inbound]
    attachments = session.scalars(select(Attachment).where(or_(Attachment.ticket_number.in_(numbers),
                                                                Attachment.inbound_id.in_(inbound_ids)))
                                  .order_by(Attachment.id))
    chats = list(session.scalars(select(ChatSession).where(_chats(emails, numbers)).order_by(ChatSession.started_at)))
    entries = {}
    if chats:
        for entry in session.scalars(select(ChatEntry).where(ChatEntry.chat_id.in_([c.id for c in chats]))
                                     .order_by(ChatEntry.chat_id, ChatEntry.seq)):
            entries.setdefault(entry.chat_id, []).append(
                {"seq": entry.seq, "kind": entry.kind, "author": entry.author, "author_role": entry.author_role,
                 "body": entry.body, "at": _iso(entry.at)})
    handles = {s.split(":", 1)[1] for s in socials if ":" in s}
    return {
        "messages": [{"id": m.id, "channel": m.channel, "sender": m.sender, "subject": m.subject, "body": m.body,
                      "quoted": m.quoted, "html": m.html, "ticket_number": m.ticket_number, "outcome": m.outcome,
                      "received_at": _iso(m.created_at)} for m in inbound],
        "attachments": [{"id": a.id, "ticket_number": a.ticket_number, "filename": a.filename,
                         "content_type": a.content_type, "size": a.size, "sha256": a.sha256,
                         "received_at": _iso(a.created_at),
                         "download": f"/api/v1/tickets/{a.ticket_number}/attachments/{a.id}"} for a in attachments],
        "quarantined": [{"id": q.id, "sender": q.sender, "subject": q.subject, "reason": q.reason,
                         "status": q.status, "ticket_number": q.ticket_number, "received_at": _iso(q.created_at),
                         "raw": base64.b64encode(q.raw or b"").decode("ascii")}
                        for q in session.scalars(select(QuarantinedMessage).where(_quarantine(emails, numbers))
                                                 .order_by(QuarantinedMessage.id))],
        "mail_sent": [{"id": o.id, "kind": o.kind, "ticket_number": o.ticket_number, "to": o.to_address,
                       "to_name": o.to_name, "subject": o.subject, "body": o.body, "status": o.status,
                       "sent_at": _iso(o.sent_at), "created_at": _iso(o.created_at)}
                      for o in session.scalars(select(OutgoingMail).where(_outgoing(emails, numbers))
                                               .order_by(OutgoingMail.id))],
        "chats": [{"id": c.id, "customer_email": c.customer_email, "customer_name": c.customer_name,
                   "subject": c.subject, "state": c.state, "ticket_number": c.ticket_number,
                   "started_at": _iso(c.started_at), "entries": entries.get(c.id, [])} for c in chats],
        "web_forms": [{"address": w.address, "at": _iso(w.at)}
                      for w in session.scalars(select(WebSubmission).where(WebSubmission.address.in_(emails))
                                               .order_by(WebSubmission.id))],
        "social_threads": [{"platform": t.platform, "thread_id": t.thread_id, "handle": t.handle,
                            "ticket_number": t.ticket_number}
                           for t in session.scalars(select(SocialThread).where(
                               or_(SocialThread.ticket_number.in_(numbers), SocialThread.handle.in_(handles))))],
    }


def erase(session, emails, numbers, socials=(), files=None):
    """Remove what intake holds about the person (see the module's docstring); answers what was erased, by
    kind. Idempotent: a second run finds nothing left to remove. Attachment files to remove after the commit
    are added to ``files``: those no attachment of anybody else refers to (files are stored once per content)."""
    files = [] if files is None else files
    emails, numbers = _lower(emails), list(numbers)
    counts = {}
    known = set(session.scalars(select(ErasedTicket.ticket_number).where(ErasedTicket.ticket_number.in_(numbers))))
    session.add_all([ErasedTicket(ticket_number=number) for number in dict.fromkeys(numbers) if number not in known])
    inbound_ids = list(session.scalars(select(InboundMessage.id).where(_inbound(emails, numbers))))
    counts["messages"] = session.execute(
        update(InboundMessage).where(InboundMessage.id.in_(inbound_ids), or_(
            InboundMessage.sender.is_not(None), InboundMessage.subject.is_not(None),
            InboundMessage.body.is_not(None), InboundMessage.html.is_not(None)))
        .values(sender=None, subject=None, body=None, quoted=None, html=None)
        .execution_options(synchronize_session=False)).rowcount
    counts["attachments"] = _delete_attachments(
        session, or_(Attachment.ticket_number.in_(numbers), Attachment.inbound_id.in_(inbound_ids)), files)
    counts["quarantined"] = session.execute(
        update(QuarantinedMessage).where(_quarantine(emails, numbers))
        .values(raw=b"", sender=None, subject=None).execution_options(synchronize_session=False)).rowcount
    session.execute(update(ThreadMessageId).where(ThreadMessageId.ticket_number.in_(numbers)).values(reply_to=None)
                    .execution_options(synchronize_session=False))
    # Mail not yet sent never goes: there is nobody to send it to any more.
    session.execute(update(OutgoingMail).where(_outgoing(emails, numbers), OutgoingMail.status == "pending")
                    .values(status="failed", last_error="recipient's personal data erased")
                    .execution_options(synchronize_session=False))
    counts["mail_sent"] = session.execute(
        update(OutgoingMail).where(_outgoing(emails, numbers)).values(to_address="", to_name=None, subject="",
                                                                      body="")
        .execution_options(synchronize_session=False)).rowcount
    chat_ids = list(session.scalars(select(ChatSession.id).where(_chats(emails, numbers))))
    if chat_ids:
        # in_ticket: nothing of these is left to copy onto the chat's ticket (the transcriber skips them)
        session.execute(update(ChatEntry).where(ChatEntry.chat_id.in_(chat_ids)).values(body=None, in_ticket=True)
                        .execution_options(synchronize_session=False))
        session.execute(update(ChatEntry).where(ChatEntry.chat_id.in_(chat_ids), ChatEntry.author.in_(emails))
                        .values(author=ERASED).execution_options(synchronize_session=False))
        session.execute(update(ChatSession).where(ChatSession.id.in_(chat_ids))
                        .values(customer_email="", customer_name=None, subject=ERASED)
                        .execution_options(synchronize_session=False))
    counts["chats"] = len(chat_ids)
    counts["web_forms"] = session.execute(delete(WebSubmission).where(WebSubmission.address.in_(emails))).rowcount
    handles = {s.split(":", 1)[1] for s in socials if ":" in s}
    counts["social_threads"] = session.execute(delete(SocialThread).where(
        or_(SocialThread.ticket_number.in_(numbers), SocialThread.handle.in_(handles)))).rowcount
    return counts


def _delete_attachments(session, condition, files):
    """Delete the attachment rows; add to ``files`` the stored files nobody else's attachment refers to (the
    caller removes them after the commit: a failed transaction must not leave rows without files)."""
    rows = session.execute(select(Attachment.id, Attachment.sha256, Attachment.path).where(condition)).all()
    if not rows:
        return 0
    session.execute(delete(Attachment).where(Attachment.id.in_([row.id for row in rows])))
    still_used = set(session.scalars(select(Attachment.sha256).where(Attachment.sha256.in_({r.sha256 for r in rows}))))
    files.extend(sorted({r.path for r in rows if r.sha256 not in still_used}))
    return len(rows)


def remove_files(store, files):
    for path in files:
        try:
            os.unlink(store.path(path))
        except FileNotFoundError:
            pass  # removed by an earlier run


def purge_expired(session, now, raw_mail_days=0, attachment_days=0, files=None):
    """Retention: the text of mail read more than ``raw_mail_days`` ago (its ticket keeps what it needs) and
    the raw copies of quarantined mail an operator settled that long ago; attachments older than
    ``attachment_days``. 0 keeps them for ever. Answers the counts purged, by kind; files to remove after the
    commit are added to ``files``."""
    files = [] if files is None else files
    counts = {"messages": 0, "quarantined": 0, "attachments": 0}
    if raw_mail_days > 0:
        cutoff = now - timedelta(days=raw_mail_days)
        counts["messages"] = session.execute(
            update(InboundMessage).where(InboundMessage.state == "done", InboundMessage.created_at < cutoff,
                                         or_(InboundMessage.body.is_not(None), InboundMessage.html.is_not(None),
                                             InboundMessage.quoted.is_not(None)))
            .values(body=None, quoted=None, html=None).execution_options(synchronize_session=False)).rowcount
        counts["quarantined"] = session.execute(
            update(QuarantinedMessage).where(QuarantinedMessage.status != "held", QuarantinedMessage.created_at < cutoff,
                                             QuarantinedMessage.raw != b"")
            .values(raw=b"").execution_options(synchronize_session=False)).rowcount
    if attachment_days > 0:
        counts["attachments"] = _delete_attachments(
            session, Attachment.created_at < now - timedelta(days=attachment_days), files)
    return counts
