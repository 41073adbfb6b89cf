"""What intake holds about a person: exported, erased (idempotently, nobody else's touched), and purged after
its retention (old raw mail and attachments go, recent ones stay). Real database and attachment folder."""
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from helpdesk_common.database import utcnow
from helpdesk_intake import personal_data
from helpdesk_intake.models import (Attachment, ChatEntry, ChatSession, InboundMessage, OutgoingMail,
                                    QuarantinedMessage, WebSubmission)
from helpdesk_intake.storage import AttachmentStore

NOW = utcnow()


def _mail(session, store, sender, number, body, age_days=0, attachment=b""):
    at = NOW - timedelta(days=age_days)
    message = InboundMessage(channel="email", mailbox="INBOX", external_id=f"<{uuid.uuid4()}@x>",
                             content_hash=uuid.uuid4().hex, state="done", outcome="created", ticket_number=number,
                             sender=sender, subject=f"About {number}", body=body, html=f"<p>{body}</p>",
                             created_at=at, done_at=at)
    session.add(message)
    session.flush()
    if attachment:
        import hashlib
        digest = hashlib.sha256(attachment).hexdigest()
        session.add(Attachment(inbound_id=message.id, ticket_number=number, filename=f"{number}.txt",
                               content_type="text/plain", size=len(attachment), sha256=digest,
                               path=store.put(digest, attachment), created_at=at))
    return message


@pytest.fixture
def store(tmp_path):
    return AttachmentStore(str(tmp_path / "attachments"))


@pytest.fixture
def held(intake_sessions, store):
    """Eva's mail (with a payslip), a quarantined mail, a chat, a web form and a reply to her; Bo's mail,
    whose attachment has the same content as one of Eva's (stored once)."""
    with intake_sessions.begin() as session:
        _mail(session, store, "eva@example.se", "HD-1", "My VPN drops", attachment=b"eva's payslip")
        _mail(session, store, "eva@example.se", "HD-2", "Invoice to Storgatan 1", attachment=b"shared logo")
        _mail(session, store, "bo@example.se", "HD-3", "Bo's printer", attachment=b"shared logo")
        session.add(QuarantinedMessage(channel="email", sha256=uuid.uuid4().hex, raw=b"From: eva@example.se\r\n\r\nhi",
                                       reason="unauthenticated", sender="eva@example.se", subject="Re: HD-1"))
        chat = ChatSession(id=str(uuid.uuid4()), state="ended", customer_email="eva@example.se",
                           customer_name="Eva Ångström", token_hash="0" * 64, subject="Chat about VPN",
                           ticket_number="HD-1")
        session.add(chat)
        session.flush()
        session.add(ChatEntry(chat_id=chat.id, seq=1, kind="message", author="eva@example.se", author_role="customer",
                              body="Are you there?"))
        session.add(WebSubmission(address="eva@example.se"))
        session.add(OutgoingMail(kind="reply", ticket_number="HD-1", to_address="eva@example.se", to_name="Eva Ångström",
                                 subject="Re: VPN", body="Dear Eva", language="en", message_id=f"<{uuid.uuid4()}@x>",
                                 status="pending", next_attempt_at=NOW))
    return ["eva@example.se"], ["HD-1", "HD-2"]


def test_the_export_holds_the_persons_mail_attachments_chats_and_forms(intake_sessions, held):
    emails, numbers = held
    with intake_sessions() as session:
        found = personal_data.export(session, emails, numbers)
    assert [m["body"] for m in found["messages"]] == ["My VPN drops", "Invoice to Storgatan 1"]
    assert sorted(a["filename"] for a in found["attachments"]) == ["HD-1.txt", "HD-2.txt"]
    assert found["quarantined"][0]["sender"] == "eva@example.se" and found["quarantined"][0]["raw"]
    assert found["chats"][0]["entries"][0]["body"] == "Are you there?"
    assert found["web_forms"] and found["mail_sent"][0]["body"] == "Dear Eva"


def test_erasure_removes_the_persons_data_and_nobody_elses(intake_sessions, store, held):
    emails, numbers = held
    files = []
    with intake_sessions.begin() as session:
        counts = personal_data.erase(session, emails, numbers, files=files)
    personal_data.remove_files(store, files)
    assert counts["messages"] == 2 and counts["attachments"] == 2 and counts["chats"] == 1
    with intake_sessions() as session:
        left = personal_data.export(session, emails, numbers)
        assert left["web_forms"] == [] and left["attachments"] == [] and left["chats"][0]["entries"][0]["body"] is None
        assert all(m["sender"] is None and m["body"] is None and m["html"] is None for m in left["messages"])
        assert left["quarantined"] == []  # found by sender or ticket: neither is left
        mail = session.scalar(select(OutgoingMail))
        assert (mail.to_address, mail.body, mail.status) == ("", "", "failed")  # the pending reply never goes
        bo = session.scalar(select(InboundMessage).where(InboundMessage.ticket_number == "HD-3"))
        assert bo.body == "Bo's printer"
        paths = {a.sha256: a.path for a in session.scalars(select(Attachment))}
    (logo,) = paths.values()  # Bo's attachment and its file (the same content as Eva's) stay
    assert store.read(logo) == b"shared logo"
    assert len(files) == 1  # Eva's payslip's file only
    with intake_sessions.begin() as session:  # again: nothing left to erase
        assert personal_data.erase(session, emails, numbers)["messages"] == 0


def test_retention_purges_old_raw_mail_and_attachments_but_not_recent_ones(intake_sessions, store):
    with intake_sessions.begin() as session:
        old = _mail(session, store, "old@example.se", "HD-7", "Old text", age_days=40, attachment=b"old file").id
        recent = _mail(session, store, "new@example.se", "HD-8", "New text", age_days=2, attachment=b"new file").id
    files = []
    with intake_sessions.begin() as session:
        counts = personal_data.purge_expired(session, NOW, raw_mail_days=30, attachment_days=30, files=files)
    personal_data.remove_files(store, files)
    assert counts == {"messages": 1, "quarantined": 0, "attachments": 1}
    with intake_sessions() as session:
        assert session.get(InboundMessage, old).body is None and session.get(InboundMessage, old).html is None
        assert session.get(InboundMessage, recent).body == "New text"
        assert [a.ticket_number for a in session.scalars(select(Attachment))] == ["HD-8"]
    with intake_sessions.begin() as session:  # nothing more to purge; 0 days keeps everything
        assert personal_data.purge_expired(session, NOW, 30, 30) == {"messages": 0, "quarantined": 0, "attachments": 0}
        assert personal_data.purge_expired(session, NOW + timedelta(days=365)) == {
            "messages": 0, "quarantined": 0, "attachments": 0}


def test_an_event_still_on_its_way_after_the_erasure_mails_nobody(intake_sessions):
    """A reply or status change announced before the erasure, handled after it, still carries the address."""
    from helpdesk_intake import mailout
    from helpdesk_intake.settings import Settings
    ticket = {"number": "HD-1", "subject": "VPN", "channel": "email", "language": "en",
              "requester": {"email": "eva@example.se", "name": "Eva"}}
    with intake_sessions.begin() as session:
        assert mailout.notify_status_changed(session, Settings(), {**ticket, "number": "HD-5"}, "resolved") is not None
        personal_data.erase(session, ["eva@example.se"], ["HD-1"])
    for _ in range(2):  # a repeated erasure records the ticket once
        with intake_sessions.begin() as session:
            personal_data.erase(session, ["eva@example.se"], ["HD-1"])
    with intake_sessions.begin() as session:
        assert mailout.notify_status_changed(session, Settings(), ticket, "resolved") is None
        assert mailout.notify_message_added(session, Settings(), ticket, {
            "visibility": "public", "author_role": "agent", "body": "Hello Eva"}) is None
    with intake_sessions() as session:
        assert [m.ticket_number for m in session.scalars(select(OutgoingMail))] == ["HD-5"]
