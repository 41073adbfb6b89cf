"""Retention in a running intake (real RabbitMQ, Dovecot, SMTP): its timer purges the text of mail read
longer ago than RAW_MAIL_RETENTION_DAYS and attachments older than ATTACHMENT_RETENTION_DAYS, keeps
recent ones, and counts what it purged in the metric. The rules themselves:
services/intake/tests/test_personal_data.py."""
import hashlib
import uuid
from datetime import timedelta

from servers import wait_for
from helpdesk_common.database import utcnow
from helpdesk_intake.models import Attachment, InboundMessage
from helpdesk_intake.storage import AttachmentStore


def _mail(session, store, age, text):
    at = utcnow() - age
    message = InboundMessage(channel="email", mailbox="INBOX", external_id=f"<{uuid.uuid4()}@x>",
                             content_hash=uuid.uuid4().hex, state="done", outcome="created", ticket_number="HD-9",
                             sender="eva@example.se", subject="VPN", body=text, created_at=at, done_at=at)
    session.add(message)
    session.flush()
    digest = hashlib.sha256(text.encode()).hexdigest()
    session.add(Attachment(inbound_id=message.id, ticket_number="HD-9", filename="scan.txt", content_type="text/plain",
                           size=len(text), sha256=digest, path=store.put(digest, text.encode()), created_at=at))
    return message.id


def test_the_retention_timer_purges_old_mail_and_attachments_and_keeps_recent_ones(container_factory, intake_config,
                                                                                  intake_sessions):
    from helpdesk_intake.service import PURGED, IntakeService

    store = AttachmentStore(intake_config["ATTACHMENTS_DIR"])
    with intake_sessions.begin() as session:
        old = _mail(session, store, timedelta(days=45), "old text")
        recent = _mail(session, store, timedelta(days=1), "recent text")
    purged = {kind: PURGED.labels(kind)._value.get() for kind in ("messages", "attachments")}
    container = container_factory(IntakeService, {**intake_config, "RAW_MAIL_RETENTION_DAYS": 30,
                                                  "ATTACHMENT_RETENTION_DAYS": 30, "RETENTION_SWEEP_INTERVAL": 0.2})
    container.start()

    def counted():
        return all(PURGED.labels(kind)._value.get() == purged[kind] + 1 for kind in purged) or None

    wait_for(counted, timeout=20, what="the old mail's text and attachment purged and counted")
    with intake_sessions() as session:
        assert session.get(InboundMessage, old).body is None
        assert session.get(InboundMessage, recent).body == "recent text"
        assert [a.inbound_id for a in session.query(Attachment)] == [recent]
    assert not any(PURGED.labels(kind)._value.get() > purged[kind] + 1 for kind in purged)  # purged once
