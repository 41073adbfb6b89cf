"""IMAP IDLE: the protocol helper against a real Dovecot, and the intake service woken by it.

The service tests poll every 60 s, so a ticket within a few seconds of the delivery can only come from IDLE
(or, where a test says so, from the watcher's reconnection); every wait is "within N seconds", generous N."""
import socket
import subprocess
import uuid

import eventlet
import pytest

import mails
from servers import Dovecot, running_dovecot, wait_for
from test_tls import certificates, tls_dovecot  # noqa: F401 (the TLS tests' Dovecot with a private CA)
from helpdesk_intake.idle import IdleSession, IdleWatcher, announces_mail
from helpdesk_intake.imap import MailboxError
from helpdesk_intake.settings import parse_mailbox_url


def address(name="idle"):
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


class DovecotWithoutIdle(Dovecot):
    """Dovecot announcing the capabilities of a server that has no IDLE."""

    def _write_config(self):
        super()._write_config()
        with open(self.config, "a") as stream:
            stream.write("imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE UIDPLUS MOVE\n")


@pytest.fixture(scope="module")
def dovecot_without_idle():
    with running_dovecot("intake-dovecot-noidle-", DovecotWithoutIdle) as server:
        yield server


@pytest.fixture
def session(mailbox):
    opened = IdleSession.open(parse_mailbox_url(mailbox.url()), timeout=10)
    yield opened
    opened.close()


# --- the protocol helper ------------------------------------------------------------------------------


def test_announcements_of_new_mail_are_recognised():
    assert announces_mail(b"* 3 EXISTS\r\n") and announces_mail(b"* 1 recent\r\n")
    assert not announces_mail(b"* 0 RECENT\r\n")  # nothing new
    assert not announces_mail(b"* 2 EXPUNGE\r\n") and not announces_mail(b"* 4 FETCH (FLAGS (\\Seen))\r\n")
    assert not announces_mail(b"+ idling\r\n") and not announces_mail(b"HDI1 OK Idle completed.\r\n")


def test_dovecot_announces_idle(session):
    assert session.supported


def test_each_arrival_is_announced_at_once_while_the_round_goes_on(session, mailbox):
    announced = []
    round_ = eventlet.spawn(session.idle, 60, lambda: announced.append(True))
    try:
        mailbox.deliver(mails.plain(address(), "Idle", "Wake up."))
        # long before the round's 60 s; Dovecot announces a delivery with EXISTS and RECENT
        wait_for(lambda: len(announced) == 2, what="the first delivery's announcements")
        mailbox.deliver(mails.plain(address(), "Idle again", "Wake up again."))
        wait_for(lambda: len(announced) > 2, what="the second delivery's, in the same round")
        assert not round_.dead
    finally:
        session.interrupt()
        with pytest.raises(MailboxError, match="closed the IDLE connection"):
            round_.wait()
    assert mailbox.counts() == (2, 2)  # EXAMINE: the watcher never marks anything


def test_rounds_end_with_done_and_the_next_one_starts_cleanly(session, mailbox):
    announced = []
    assert session.idle(0.3, lambda: announced.append(True)) == 0  # nothing arrived: DONE answered
    eventlet.spawn_after(0.3, mailbox.deliver, mails.plain(address(), "Idle", "In the second round."))
    assert session.idle(3, lambda: announced.append(True)) >= 1  # EXISTS, and RECENT with it
    count = len(announced)
    assert session.idle(0.3, lambda: announced.append(True)) == 0  # the news was taken
    assert len(announced) == count


def test_mail_delivered_between_rounds_is_announced_by_the_next(session, mailbox):
    assert session.idle(0.2, lambda: None) == 0
    mailbox.deliver(mails.plain(address(), "Between", "Delivered while not idling."))
    announced = []
    round_ = eventlet.spawn(session.idle, 60, lambda: announced.append(True))
    try:
        wait_for(lambda: announced, what="the announcement")
    finally:
        session.interrupt()
        with pytest.raises(MailboxError, match="closed the IDLE connection"):
            round_.wait()


def test_interrupt_ends_a_round_at_once(session):
    eventlet.spawn_after(0.5, session.interrupt)
    with pytest.raises(MailboxError, match="closed the IDLE connection"):
        with eventlet.Timeout(30):  # the round would otherwise last 60 s
            session.idle(60, lambda: None)


@pytest.mark.parametrize("how", ["imaps", "starttls"])
def test_idle_over_tls(tls_dovecot, certificates, how):  # noqa: F811
    mailbox = tls_dovecot.mailbox()
    url = (mailbox.tls_url(cafile=certificates.ca) if how == "imaps"
           else mailbox.url(starttls="true", cafile=certificates.ca))
    session = IdleSession.open(parse_mailbox_url(url), timeout=10)
    try:
        assert session.idle(0.3, lambda: None) == 0  # the refresh path: the TLS connection stays usable
        announced = []
        round_ = eventlet.spawn(session.idle, 60, lambda: announced.append(True))
        mailbox.deliver(mails.plain(address(), "Over TLS", "Announced through TLS."))
        wait_for(lambda: announced, what="the announcement over TLS")
        session.interrupt()
        with pytest.raises(MailboxError, match="closed the IDLE connection"):
            round_.wait()
    finally:
        session.close()


def test_a_server_without_idle_is_left_to_the_poll(dovecot_without_idle):
    config = parse_mailbox_url(dovecot_without_idle.mailbox().url())
    opened = IdleSession.open(config, timeout=10)
    try:
        assert not opened.supported
    finally:
        opened.close()
    woken = []
    watcher = IdleWatcher(config, lambda: woken.append(True), backoff=(0.1,))
    thread = eventlet.spawn(watcher.run)
    with eventlet.Timeout(20):
        thread.wait()  # ends by itself: nothing to watch with
    assert woken == [] and watcher.session is None


def test_the_watcher_reconnects_after_a_dropped_connection(mailbox):
    woken = []
    watcher = IdleWatcher(parse_mailbox_url(mailbox.url()), lambda: woken.append(True), backoff=(0.2,))
    thread = eventlet.spawn(watcher.run)
    try:
        first = wait_for(lambda: watcher.session, what="the watcher's connection")
        wait_for(lambda: woken, what="the wake after connecting")
        first.connection.sock.shutdown(socket.SHUT_RDWR)  # the connection drops (as a server restart would do)
        wait_for(lambda: watcher.session not in (None, first) and len(woken) >= 2, what="a new connection")
        count = len(woken)
        mailbox.deliver(mails.plain(address(), "After the drop", "Still watched."))
        wait_for(lambda: len(woken) > count, what="the wake for the new mail")
    finally:
        watcher.stop()
        with eventlet.Timeout(10):
            thread.wait()


# --- the service --------------------------------------------------------------------------------------


@pytest.fixture
def slow_poll_config(intake_config):
    """A poll interval far longer than any wait below: what arrives in time came by IDLE."""
    return {**intake_config, "IMAP_POLL_INTERVAL": 60}


def _start(container_factory, config):
    from helpdesk_intake.entrypoints import MailboxPoll
    from helpdesk_intake.service import IntakeService

    container = container_factory(IntakeService, config)
    container.start()
    poll = next(e for e in container.entrypoints if isinstance(e, MailboxPoll))
    return container, poll


def test_with_idle_mail_becomes_a_ticket_long_before_the_next_poll(container_factory, slow_poll_config,
                                                                   tickets_service, mailbox, wait_tickets):
    first, second = address("first"), address("second")
    mailbox.deliver(mails.plain(first, "Before start", "Read by the first poll."))
    _container, poll = _start(container_factory, slow_poll_config)
    wait_tickets(first)  # the first poll ran: the next one is a minute away
    (watcher,) = poll.watchers
    wait_for(lambda: watcher.session, what="the watcher to connect")
    mailbox.deliver(mails.plain(second, "While idling", "Read because IDLE woke the poll."))
    (ticket,) = wait_tickets(second, timeout=15)
    assert ticket["subject"] == "While idling"
    wait_for(lambda: mailbox.counts() == (2, 0), what="both marked seen")


def test_wakes_never_start_a_poll_beside_the_running_one(container_factory, slow_poll_config, tickets_service,
                                                         mailbox, wait_tickets, monkeypatch):
    from helpdesk_intake import poller

    running, overlaps, polls, drain = [], [], [], poller.drain

    def slow_drain(*args, **kwargs):
        overlaps.append(len(running))
        running.append(True)
        try:
            eventlet.sleep(0.3)  # holds the poll open so that arrivals wake the poller while it runs
            polls.append(drain(*args, **kwargs))
        finally:
            running.pop()

    monkeypatch.setattr(poller, "drain", slow_drain)
    _container, poll = _start(container_factory, slow_poll_config)
    (watcher,) = poll.watchers
    wait_for(lambda: watcher.session, what="the watcher to connect")
    customer = address("burst")
    for n in range(8):
        mailbox.deliver(mails.plain(customer, f"Burst {n}", "One of several."))
        eventlet.sleep(0.1)  # spreading the arrivals over several polls, not waiting for a result
    tickets = wait_tickets(customer, 8, timeout=30)
    assert sorted(t["subject"] for t in tickets) == [f"Burst {n}" for n in range(8)]
    # the poll that opened the last ticket may still be recording it: wait for it to return
    wait_for(lambda: sum(polls) >= 8, what="the last poll to finish")
    assert set(overlaps) == {0} and sum(polls) == 8  # one poll at a time, each mail read once


def test_without_idle_mail_waits_for_the_poll(container_factory, slow_poll_config, tickets_service, mailbox,
                                               wait_tickets, find_tickets):
    config = {**slow_poll_config, "IMAP_IDLE": False}
    first, second = address("first"), address("second")
    mailbox.deliver(mails.plain(first, "Before start", "Read by the first poll."))
    container, poll = _start(container_factory, config)
    assert poll.watchers == []
    wait_tickets(first)
    mailbox.deliver(mails.plain(second, "No idle", "Waits for the next poll."))
    with pytest.raises(AssertionError):  # nothing wakes the poll: still no ticket 5 s later
        wait_tickets(second, timeout=5)
    assert find_tickets(second) == []
    container.stop()
    # nothing lost: the next poll (here, the first of a restarted intake) reads it
    _start(container_factory, config)
    wait_tickets(second)


def test_a_dropped_idle_connection_loses_no_mail(container_factory, slow_poll_config, tickets_service, mailbox,
                                                 wait_tickets):
    _container, poll = _start(container_factory, slow_poll_config)
    (watcher,) = poll.watchers
    watcher.backoff = (0.5,)
    dropped = wait_for(lambda: watcher.session, what="the watcher to connect")
    dropped.connection.sock.shutdown(socket.SHUT_RDWR)
    # delivered while the watcher is away: the wake after its reconnection reads it
    during = address("during")
    mailbox.deliver(mails.plain(during, "During the outage", "Arrived while nothing watched."))
    wait_tickets(during, timeout=20)
    wait_for(lambda: watcher.session not in (None, dropped), what="the watcher to reconnect")
    after = address("after")
    mailbox.deliver(mails.plain(after, "After the outage", "Watched again."))
    wait_tickets(after, timeout=15)


def test_mail_is_read_at_once_after_the_server_drops_every_connection(container_factory, slow_poll_config,
                                                                     tickets_service, mailbox, wait_tickets):
    """``doveadm kick``: the server ends the user's sessions, the watcher's and the poll's (as a restart
    would). The watcher reconnects and wakes the poll, which reconnects too: no minute-long wait."""
    first = address("first")
    mailbox.deliver(mails.plain(first, "Before the kick", "Read by the first poll."))
    _container, poll = _start(container_factory, slow_poll_config)
    (watcher,) = poll.watchers
    watcher.backoff = (0.5,)
    wait_tickets(first)  # the poll's connection is open (and kept) from here
    kicked = wait_for(lambda: watcher.session, what="the watcher to connect")
    subprocess.run(["doveadm", "-c", mailbox.server.config, "kick", mailbox.user], check=True, capture_output=True)
    during = address("during")
    mailbox.deliver(mails.plain(during, "After the kick", "Arrived as the server dropped everyone."))
    wait_tickets(during, timeout=20)
    assert watcher.session is not kicked


def test_the_timer_poll_reads_the_mailbox_while_the_watcher_is_down(container_factory, intake_config,
                                                                   tickets_service, mailbox, wait_tickets):
    _container, poll = _start(container_factory, {**intake_config, "IMAP_POLL_INTERVAL": 1})
    (watcher,) = poll.watchers
    watcher.backoff = (3600,)  # once dropped, it stays away for the whole test
    dropped = wait_for(lambda: watcher.session, what="the watcher to connect")
    dropped.connection.sock.shutdown(socket.SHUT_RDWR)
    wait_for(lambda: watcher.session is None, what="the watcher to give up its connection")
    customer = address("fallback")
    mailbox.deliver(mails.plain(customer, "Nobody idles", "The timer poll reads it."))
    wait_tickets(customer, timeout=20)
    assert watcher.session is None  # it was the poll, not a reconnected watcher


def test_stopping_the_service_ends_the_watchers_promptly(container_factory, slow_poll_config, tickets_service,
                                                          mailbox):
    container, poll = _start(container_factory, slow_poll_config)
    (watcher,) = poll.watchers
    wait_for(lambda: watcher.session, what="the watcher to connect")
    with eventlet.Timeout(15):
        container.stop()
    assert all(thread.dead for thread in poll.watcher_threads) and watcher.session is None


def test_killing_the_service_ends_the_watchers_promptly(container_factory, slow_poll_config, tickets_service,
                                                         mailbox):
    container, poll = _start(container_factory, slow_poll_config)
    (watcher,) = poll.watchers
    wait_for(lambda: watcher.session, what="the watcher to connect")
    with eventlet.Timeout(15):
        container.kill()
    assert all(thread.dead for thread in poll.watcher_threads)
