"""Processes killed mid-batch, then restarted: every message becomes exactly one ticket or one reply.

Intake killed right after the tickets service answered, before intake recorded anything; the tickets
service killed right after it committed a batch, before it answered. Both run as real processes."""
import os
import subprocess
import sys

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

import mails
from viewers import ADMIN
from servers import wait_for
from helpdesk_common.adapters.database import engine_for
from helpdesk_intake.models import InboundMessage, OutgoingMail

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)
FAILPOINT_EXIT = 86


def start_service(tmp_path, rabbit_config, service, name, settings, env):
    """``nameko run <service>.service`` as a process of its own, logging to ``<name>.log``; ``env`` (a
    failpoint, say) overrides ``settings``."""
    environment = dict(os.environ, PYTHONWARNINGS="ignore", HELPDESK_AMQP_URI=rabbit_config["AMQP_URI"],
                       HELPDESK_LOG_LEVEL="INFO", **settings)
    environment.update(env)
    log = open(tmp_path / f"{name}.log", "ab")
    return subprocess.Popen([os.path.join(BIN, "nameko"), "run", f"helpdesk_{service}.service", "--config",
                             f"services/{service}/config.yaml"], cwd=ROOT, env=environment, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def start_intake(tmp_path, rabbit_config, db_url, mailbox, smtp_sink, name, **env):
    return start_service(tmp_path, rabbit_config, "intake", name, dict(
        HELPDESK_INTAKE_DB_URL=db_url, HELPDESK_IMAP_URL=mailbox.url(), HELPDESK_IMAP_POLL_INTERVAL="0.1",
        HELPDESK_IMAP_BATCH_SIZE="5", HELPDESK_SMTP_URL=smtp_sink.url,
        HELPDESK_SUPPORT_ADDRESS="support@helpdesk.test", HELPDESK_ATTACHMENTS_DIR=str(tmp_path / "attachments"),
        HELPDESK_INTAKE_CLAIM_LEASE="5", HELPDESK_IMAP_POLL_TIMEOUT="10",
        HELPDESK_MAIL_AUTHSERV_ID=mails.AUTHSERV_ID, HELPDESK_MAIL_ACK_LIMIT="0"), env)


def start_tickets(tmp_path, rabbit_config, db_url, name, **env):
    return start_service(tmp_path, rabbit_config, "tickets", name, dict(HELPDESK_TICKETS_DB_URL=db_url), env)


def stop(process):
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_intake_killed_mid_batch_loses_nothing_and_doubles_nothing(tmp_path, rabbit_config, tickets_service,
                                                                    tickets_rpc, intake_db_url, intake_sessions,
                                                                    mailbox, smtp_sink, find_tickets):
    customer = f"batch-{os.getpid()}@example.com"
    existing = tickets_rpc.create_ticket({"subject": "Existing", "description": "Earlier request",
                                          "requester": {"email": customer}, "channel": "email"}, ADMIN)["ticket"]
    mailbox.deliver(mails.plain(customer, f"Re: [{existing['number']}] Existing", "More details for you.",
                                extra=mails.passed(customer)))
    for n in range(11):
        mailbox.deliver(mails.plain(customer, f"Request {n:02d}", f"Body {n}"))

    dying = start_intake(tmp_path, rabbit_config, intake_db_url, mailbox, smtp_sink, "dying",
                         HELPDESK_FAILPOINT="intake.after_tickets_call")
    try:
        assert dying.wait(60) == FAILPOINT_EXIT, (tmp_path / "dying.log").read_text()
    finally:
        if dying.poll() is None:
            dying.kill()
    # it died after the tickets service created tickets and added the reply, before recording them
    assert mailbox.counts() == (12, 12)
    created_before_restart = len(find_tickets(customer))
    # the existing one and the first batch's four new ones; maybe the second batch's five too, whose
    # tickets call goes out while the first batch's outcome is being recorded (poller.drain)
    assert created_before_restart in (5, 10)

    survivor = start_intake(tmp_path, rabbit_config, intake_db_url, mailbox, smtp_sink, "survivor")
    try:
        wait_for(lambda: mailbox.counts() == (12, 0), timeout=60, what="every message marked processed")
        tickets = find_tickets(customer)
        subjects = sorted(t["subject"] for t in tickets)
        assert subjects == sorted(["Existing"] + [f"Request {n:02d}" for n in range(11)])
        replies = [m["body"] for m in tickets_rpc.list_messages(existing["number"], ADMIN)]
        assert replies == ["More details for you."]
        with intake_sessions() as session:
            states = dict(session.execute(select(InboundMessage.state, func.count()).group_by(InboundMessage.state)).all())
            # one acknowledgement per new ticket, written with the record of its mail: none lost, none twice
            acknowledged = list(session.scalars(select(OutgoingMail.ticket_number).where(
                OutgoingMail.kind == "acknowledgement")))
        assert states == {"done": 12}
        assert sorted(acknowledged) == sorted(t["number"] for t in tickets if t["subject"] != "Existing")
    finally:
        stop(survivor)


def test_tickets_killed_after_commit_before_answering_loses_nothing_and_doubles_nothing(
        tmp_path, rabbit_config, tickets_db_url, intake_db_url, intake_sessions, mailbox, smtp_sink):
    """The tickets service commits a batch of intake's tickets and dies before it answers. Intake gives up
    on the call, keeps the mails unread, and asks again; the new tickets replica finds each mail's ticket by
    its idempotency key (and the dead one's unacknowledged request, redelivered, finds them too)."""
    from helpdesk_tickets.models import Ticket

    customer = f"tickets-crash-{os.getpid()}@example.com"
    for n in range(8):
        mailbox.deliver(mails.plain(customer, f"Printer {n:02d}", f"Body {n}"))
    tickets_sessions = sessionmaker(engine_for(tickets_db_url))

    def subjects():
        with tickets_sessions() as session:
            return sorted(session.scalars(select(Ticket.subject)))

    dying = start_tickets(tmp_path, rabbit_config, tickets_db_url, "tickets-dying",
                          HELPDESK_FAILPOINT="tickets.after_create_tickets_commit")
    intake = start_intake(tmp_path, rabbit_config, intake_db_url, mailbox, smtp_sink, "intake",
                          HELPDESK_IMAP_POLL_TIMEOUT="3")
    try:
        assert dying.wait(60) == FAILPOINT_EXIT, (tmp_path / "tickets-dying.log").read_text()
        committed = subjects()
        assert len(committed) in (3, 5)  # one batch (of 5, or the other of 3), committed and never answered
        assert mailbox.counts() == (8, 8)  # so no mail is marked read

        survivor = start_tickets(tmp_path, rabbit_config, tickets_db_url, "tickets-survivor")
        try:
            wait_for(lambda: mailbox.counts() == (8, 0), timeout=60, what="every mail marked processed")
            assert subjects() == [f"Printer {n:02d}" for n in range(8)]  # each once
            with intake_sessions() as session:
                states = dict(session.execute(select(InboundMessage.state, func.count())
                                              .group_by(InboundMessage.state)).all())
                acknowledged = list(session.scalars(select(OutgoingMail.ticket_number)
                                                    .where(OutgoingMail.kind == "acknowledgement")))
            assert states == {"done": 8}
            assert len(acknowledged) == len(set(acknowledged)) == 8
        finally:
            stop(survivor)
    finally:
        stop(intake)
        if dying.poll() is None:
            dying.kill()
