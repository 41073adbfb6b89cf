"""Hostile mail through the real things: Dovecot, tickets and intake on RabbitMQ (and, for the restarts,
intake as a process killed by a failpoint). Ordinary mail behind hostile mail still becomes tickets
within seconds; hostile mail ends as a ticket or in the quarantine; nothing is parsed for ever."""
import os
import uuid

import pytest
from sqlalchemy import select

import mails
from servers import wait_for
from helpdesk_common.errors import Conflict
from test_crash import FAILPOINT_EXIT, start_intake, stop
from helpdesk_intake.models import ParseAttempt, QuarantinedMessage


def address(name):
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def held(rpc, code):
    return [q for q in rpc.list_quarantine({"status": "held"}) if q["code"] == code]


@pytest.fixture
def hostile_intake(container_factory, intake_config, tickets_service):
    """Intake with a 7 MB size limit and a 5 s parse budget."""
    from helpdesk_intake.service import IntakeService

    container = container_factory(IntakeService, {**intake_config, "MAIL_MAX_BYTES": 7_000_000,
                                                  "MAIL_PARSE_TIMEOUT": 5, "IMAP_BATCH_SIZE": 4})
    container.start()
    return container


@pytest.fixture
def rpc(intake_config):
    """Intake's RPC without conftest's intake_rpc (which starts an intake of its own on the mailbox)."""
    from nameko.standalone.rpc import ServiceRpcProxy

    with ServiceRpcProxy("intake", intake_config, timeout=15) as proxy:
        yield proxy


def test_ordinary_mail_behind_hostile_mail_still_becomes_tickets(hostile_intake, rpc, mailbox, wait_tickets,
                                                                  find_tickets, intake_sessions):
    quoter, nester, big = address("quoter"), address("nester"), address("big")
    # 1. 200,000 quoted lines interleaved with blank lines and a last line below them (4.3 MB of text,
    # 5.9 MB of mail): hours for the old quote detection
    quoted = "New question on top.\n" + "".join(f"> quoted line {n}\n\n" for n in range(200_000)) + "Bye"
    mailbox.deliver(mails.plain(quoter, "Long quote", quoted))
    # 2. blockquotes nested 20,000 deep, each with a line of text
    nested = "".join(f"<blockquote>level {n}" for n in range(20_000)) + "</blockquote>" * 20_000
    mailbox.deliver(mails.html_only(nester, "Deep", nested))
    # 3. over the size limit: only its headers are ever fetched (and of a hostile header block, 64 KB)
    mailbox.deliver(mails.with_attachment(big, "Huge scan", "See attached.", "<p>See attached.</p>", "scan.bin",
                                          os.urandom(6_000_000), content_type="application/octet-stream"))
    heady = address("heady")
    mailbox.deliver(mails.plain(heady, "Huge header", "Hi", extra={
        f"X-Filler-{n}": "y" * 900 for n in range(8_000)}))
    ordinary = [address(f"ordinary{n}") for n in range(3)]
    for n, customer in enumerate(ordinary):
        mailbox.deliver(mails.plain(customer, f"Ordinary {n}", "Just a normal question."))

    for n, customer in enumerate(ordinary):
        (ticket,) = wait_tickets(customer, timeout=30)
        assert ticket["description"] == "Just a normal question."
    (long_one,) = wait_tickets(quoter, timeout=30)
    assert long_one["description"].startswith("New question on top.\n> quoted line 0")
    description = long_one["description"]
    assert len(description) <= 100_000 and "more characters in full-text.txt" in description
    assert description.endswith(f"[Attachments]\n- full-text.txt (text/plain, {len(quoted.encode())} bytes)")
    (deep,) = wait_tickets(nester, timeout=30)
    quote_lines = [line for line in deep["description"].split("\n") if line.startswith(">")]
    assert len(quote_lines) > 1_000 and max(len(line) for line in quote_lines) <= len("> " * 10 + "level 19999")
    wait_for(lambda: len(held(rpc, "too_large")) == 2, what="the large mails quarantined")
    (too_large,) = [q for q in held(rpc, "too_large") if q["sender"] == big]
    (header_heavy,) = [q for q in held(rpc, "too_large") if q["sender"] == heady]
    assert header_heavy["size"] == 65536 and header_heavy["subject"] == "Huge header"
    assert too_large["headers_only"] and too_large["subject"] == "Huge scan" and too_large["sender"] == big
    assert too_large["size"] < 2_000  # the headers only
    assert find_tickets(big) == []
    wait_for(lambda: mailbox.counts() == (7, 0), timeout=30, what="every message marked seen")

    # operators read it, download it, cannot retry it (its body is still on the server), discard it
    detail = rpc.read_quarantined(too_large["id"])
    assert ["Subject", "Huge scan"] in detail["headers"] and detail["parse_error"] == "only the headers were fetched"
    raw = rpc.quarantined_raw(too_large["id"])
    assert raw["headers_only"] and raw["filename"] == f"quarantine-{too_large['id']}.eml"
    with pytest.raises(Conflict, match="Only the headers of this message were fetched"):
        rpc.retry_quarantined(too_large["id"])
    gone = rpc.discard_quarantined(too_large["id"], {"actor": "admin-1", "role": "admin"})
    assert gone["status"] == "discarded" and gone["decided_by"] == "admin-1" and gone["decided_at"]
    assert [q["sender"] for q in held(rpc, "too_large")] == [heady]
    with intake_sessions() as session:
        assert session.scalars(select(ParseAttempt)).all() == []  # every parse finished and was forgotten


def test_a_message_that_hangs_the_parser_is_quarantined_after_three_attempts(monkeypatch, container_factory,
                                                                            intake_config, tickets_service,
                                                                            rpc, mailbox, wait_tickets):
    """The failpoint makes the worker's parse of the poison message hang for ever (as a pathological input
    would): each attempt is stopped after the budget, the worker replaced, the mail after it goes on."""
    from helpdesk_intake.service import IntakeService

    marker = f"POISON-{uuid.uuid4().hex}"
    monkeypatch.setenv("HELPDESK_FAILPOINT", f"intake.parse:hang:{marker}")  # the worker inherits it
    poisoner, before, after = address("poisoner"), address("before"), address("after")
    mailbox.deliver(mails.plain(before, "Before", "In the same batch."))
    mailbox.deliver(mails.plain(poisoner, marker, "This one hangs the parser."))
    mailbox.deliver(mails.plain(after, "After", "Behind it."))
    container = container_factory(IntakeService, {**intake_config, "MAIL_PARSE_TIMEOUT": 1})
    container.start()
    wait_tickets(before)
    wait_tickets(after)
    (poison,) = wait_for(lambda: held(rpc, "parse_failed"), timeout=30, what="the poison quarantined")
    assert poison["reason"] == "failed to parse 3 times: parsing took over 1s (stopped)"
    assert poison["subject"] == marker
    wait_for(lambda: mailbox.counts() == (3, 0), what="every message marked seen")
    # reading it parses it within the budget too: the operator's view does not hang either
    detail = rpc.read_quarantined(poison["id"])
    assert detail["parse_error"] == "parsing took over 1s (stopped)" and detail["text"] is None


def test_a_message_that_kills_intake_mid_parse_is_quarantined_across_restarts(tmp_path, rabbit_config,
                                                                             tickets_service, intake_db_url,
                                                                             intake_sessions, mailbox, smtp_sink,
                                                                             wait_tickets):
    """Parsed in the service's own process (MAIL_PARSE_WORKER=false), the poison message kills intake
    every time (as a parse that the orchestrator kills for hanging would): the attempt committed before
    parsing counts each death; after three, the restarted intake quarantines it unparsed and the mail
    that shared its batch becomes tickets (parsed alone, it was never counted against)."""
    marker = f"POISON-{uuid.uuid4().hex}"
    before, after = address("before"), address("after")
    mailbox.deliver(mails.plain(before, "Before", "In the same batch."))
    mailbox.deliver(mails.plain(address("poisoner"), marker, "This one kills intake."))
    mailbox.deliver(mails.plain(after, "After", "Behind it."))
    for attempt in range(3):
        dying = start_intake(tmp_path, rabbit_config, intake_db_url, mailbox, smtp_sink, f"dying-{attempt}",
                             HELPDESK_MAIL_PARSE_WORKER="false", HELPDESK_FAILPOINT=f"intake.parse:exit:{marker}")
        try:
            assert dying.wait(60) == FAILPOINT_EXIT, (tmp_path / f"dying-{attempt}.log").read_text()
        finally:
            if dying.poll() is None:
                dying.kill()
        assert mailbox.counts() == (3, 3)  # nothing was marked: it died before
    with intake_sessions() as session:
        counts = sorted(row.attempts for row in session.scalars(select(ParseAttempt)))
    # the poison: in the batch once, then alone twice; the others: at most the batch's one
    assert counts[-1] == 3 and all(count == 1 for count in counts[:-1])

    survivor = start_intake(tmp_path, rabbit_config, intake_db_url, mailbox, smtp_sink, "survivor",
                            HELPDESK_MAIL_PARSE_WORKER="false", HELPDESK_FAILPOINT=f"intake.parse:exit:{marker}")
    try:
        wait_tickets(before, timeout=30)
        wait_tickets(after, timeout=30)
        wait_for(lambda: mailbox.counts() == (3, 0), timeout=30, what="every message marked seen")
        assert survivor.poll() is None  # it never parsed the poison message again
        with intake_sessions() as session:
            (row,) = session.scalars(select(QuarantinedMessage)).all()
            assert (row.code, row.subject, row.status) == ("parse_failed", marker, "held")
            assert row.reason == "failed to parse 3 times: the parse never finished (process killed)"
            assert session.scalars(select(ParseAttempt)).all() == []
    finally:
        stop(survivor)
