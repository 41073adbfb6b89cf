"""The outgoing mail queue without a broker: failures are retried with backoff, then kept as failed."""
import email
import email.policy
import smtplib
from datetime import timedelta

from sqlalchemy import select

from helpdesk_common.database import utcnow
from helpdesk_intake import mailout
from helpdesk_intake.models import OutgoingMail, Outbox, ThreadMessageId
from helpdesk_intake.settings import Settings, parse_smtp_url

TICKET = {"number": "HD-000042", "subject": "VPN", "channel": "email", "language": "nl",
          "requester": {"email": "wim@example.nl", "name": "Wim"}}


def settings(**overrides):
    return Settings(smtp=parse_smtp_url("smtp://127.0.0.1:1"), support_address="support@helpdesk.test",
                    mail_backoff=(10, 60), mail_max_attempts=3, **overrides)


def test_internal_notes_and_customer_messages_are_never_mailed(intake_sessions):
    with intake_sessions.begin() as session:
        assert mailout.notify_message_added(session, settings(), TICKET, {
            "visibility": "internal", "author_role": "agent", "body": "secret"}) is None
        assert mailout.notify_message_added(session, settings(), TICKET, {
            "visibility": "public", "author_role": "customer", "body": "mine"}) is None
        assert mailout.notify_status_changed(session, settings(), TICKET, "in_progress") is None
        assert mailout.notify_ticket_created(session, settings(), {**TICKET, "channel": "phone"}) is None
        row = mailout.notify_status_changed(session, settings(), TICKET, "resolved")
        assert row.subject == "[HD-000042] Opgelost: VPN" and "Beste Wim" in row.body
    with intake_sessions() as session:
        assert [r.direction for r in session.scalars(select(ThreadMessageId))] == ["out"]


def test_failed_sends_back_off_then_fail_visibly_and_an_operator_retry_sends(intake_sessions):
    with intake_sessions.begin() as session:
        row = mailout.notify_message_added(session, settings(), TICKET, {
            "visibility": "public", "author_role": "agent", "body": "Try now."})
        session.flush()
        mail_id = row.id

    def refuse(_config):
        raise smtplib.SMTPConnectError(421, b"try later")

    sender = mailout.MailSender(intake_sessions, settings(), connect=refuse)
    assert sender.send_due() == 1
    with intake_sessions() as session:
        mail = session.get(OutgoingMail, mail_id)
        assert (mail.status, mail.attempts) == ("pending", 1) and "421" in mail.last_error
        assert mail.next_attempt_at > utcnow() + timedelta(seconds=9)
    assert sender.send_due() == 0  # not due yet
    for _ in range(2):
        with intake_sessions.begin() as session:
            session.get(OutgoingMail, mail_id).next_attempt_at = utcnow()
        sender.send_due()
    with intake_sessions() as session:
        assert session.get(OutgoingMail, mail_id).status == "failed"

    sent = []

    class Client:
        def sendmail(self, from_addr, to_addrs, raw):
            sent.append((email.message_from_bytes(raw), to_addrs))

        def quit(self):
            pass

    with intake_sessions.begin() as session:
        assert mailout.retry(session, mail_id)["status"] == "pending"
    assert mailout.MailSender(intake_sessions, settings(), connect=lambda _c: Client()).send_due() == 1
    (message, to), = sent
    assert to == ["wim@example.nl"] and message["Subject"] == "Re: [HD-000042] VPN"
    assert message["Message-ID"] == f"<{row.message_id}>" and "Auto-Submitted" not in message
    with intake_sessions() as session:
        assert session.get(OutgoingMail, mail_id).status == "sent"
        assert [o.event_type for o in session.scalars(select(Outbox))] == ["email_sent"]


def test_a_permanent_refusal_fails_at_once(intake_sessions):
    with intake_sessions.begin() as session:
        row = mailout.notify_status_changed(session, settings(), TICKET, "pending")
        session.flush()
        mail_id = row.id

    class Client:
        def sendmail(self, *args, **kwargs):
            raise smtplib.SMTPRecipientsRefused({"wim@example.nl": (550, b"no such user")})

        def quit(self):
            pass

    mailout.MailSender(intake_sessions, settings(), connect=lambda _c: Client()).send_due()
    with intake_sessions() as session:
        mail = session.get(OutgoingMail, mail_id)
        assert (mail.status, mail.attempts) == ("failed", 1) and "550" in mail.last_error


def test_a_built_mail_reads_back_the_same_and_a_name_cannot_add_headers(intake_sessions):
    with intake_sessions.begin() as session:
        ticket = {**TICKET, "language": "sv", "subject": "Skrivaren är trasig " + "igen " * 20,
                  "requester": {"email": "asa@example.se", "name": "Åsa Öberg\r\nBcc: victim@example.com"}}
        row = mailout.notify_ticket_created(session, settings(), {**ticket, "channel": "web"})
        row.body += "\n" + "x" * 1500  # longer than a mail's line may be
        session.flush()
        raw = mailout.render_message(row, settings())
        flattened = mailout.build_message(row, settings()).as_bytes(policy=email.policy.compat32.clone(linesep="\r\n"))
    assert raw == flattened  # written by hand exactly as email's generator writes it, only cheaper
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF throughout, as SMTP sends it
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Bcc"] is None and b"\nBcc:" not in raw.split(b"\r\n\r\n", 1)[0]
    assert message["To"].addresses[0].display_name == "Åsa Öberg Bcc: victim@example.com"
    assert message["To"].addresses[0].addr_spec == "asa@example.se"
    assert message["Subject"] == row.subject and "Skrivaren är trasig" in message["Subject"]
    assert message.get_content().replace("\r\n", "\n") == row.body.replace("\r\n", "\n") + "\n" and message["Content-Language"] == "sv"
    assert max(len(line) for line in raw.split(b"\n")) <= 998
    assert message["Message-ID"] == f"<{row.message_id}>" and message["Auto-Submitted"] == "auto-replied"


def test_acknowledgements_are_limited_per_address_against_backscatter(intake_sessions):
    """Anyone can name any address in a From (or a web form): at most MAIL_ACK_LIMIT acknowledgements an
    address per window, whoever asks; other mail (replies, status changes) is not limited."""
    limited = settings(mail_ack_limit=3, mail_ack_window=3600)
    victim = {**TICKET, "requester": {"email": "victim@example.org"}}
    opened = [({**victim, "number": f"HD-1000{n:02d}"}, f"m{n}@evil.example") for n in range(5)]
    with intake_sessions.begin() as session:
        assert mailout.acknowledge_mails(session, limited, opened[:2]) == 2
    with intake_sessions.begin() as session:
        # a later batch: the window remembers; another address is not affected; a Reply-To target counts too
        assert mailout.acknowledge_mails(session, limited, opened[2:] + [
            (TICKET, "own@client.example"), ({**victim, "number": "HD-100099"}, "x@y", "victim@example.org")]) == 2
        assert mailout.notify_ticket_created(session, limited, {**victim, "number": "HD-100100", "channel": "web"}) \
            is None
        assert mailout.notify_status_changed(session, limited, {**victim, "number": "HD-100000"}, "resolved")
    with intake_sessions.begin() as session:
        old = session.scalars(select(OutgoingMail).where(OutgoingMail.kind == "acknowledgement")).first()
        old.created_at = utcnow() - timedelta(hours=2)  # out of the window: room for one more
    with intake_sessions.begin() as session:
        assert mailout.acknowledge_mails(session, limited, [({**victim, "number": "HD-100101"}, None)]) == 1
    with intake_sessions() as session:
        acks = sorted(session.scalars(select(OutgoingMail.to_address).where(OutgoingMail.kind == "acknowledgement")))
    assert acks == ["victim@example.org"] * 4 + ["wim@example.nl"]
    unlimited = settings(mail_ack_limit=0)
    with intake_sessions.begin() as session:
        assert mailout.acknowledge_mails(session, unlimited, opened) == 5


def test_an_account_mail_belongs_to_no_ticket_and_its_link_stays_out_of_the_queue_view(intake_sessions):
    from helpdesk_common.contracts import validate
    from helpdesk_common.contracts.intake import AccountMail

    mail = validate(AccountMail, {"to": "ada@example.org", "name": "Ada", "subject": "Reset your password",
                                  "body": "Open https://helpdesk.test/password/reset/SECRET", "language": "nl"})
    with intake_sessions.begin() as session:
        row = mailout.enqueue_account_mail(session, settings(), mail)
        message = email.message_from_bytes(mailout.render_message(row, settings()), policy=email.policy.default)
        view = mailout.outgoing_view(row)
    assert message["X-Helpdesk-Ticket"] is None and message["Auto-Submitted"] == "auto-generated"
    assert message["To"].addresses[0].addr_spec == "ada@example.org" and message["Content-Language"] == "nl"
    assert "SECRET" in message.get_content() and "SECRET" not in str(view)
    assert view["kind"] == "account" and row.status == "pending"
