"""The poller's backlog signal, which outgoing mail waits for (no servers: a mailbox and an ingestor of
plain Python stand in, as ``drain`` only calls their methods)."""
import threading

from intake import poller
from intake.ingest import Batch


class Mailbox:
    """Serves ``batches`` of (uid, raw) in turn and notes, at each fetch, whether a backlog was signalled."""

    def __init__(self, batches, backlog):
        self.batches, self.backlog = list(batches), backlog
        self.backlog_at_fetch, self.marked = [], []
        self.config = type("Config", (), {"name": "test"})()

    def fetch_unprocessed(self, limit, after=None):
        self.backlog_at_fetch.append(self.backlog.began is not None)
        return self.batches.pop(0) if self.batches else []

    def mark_processed(self, uids):
        self.marked.extend(uids)


class Ingestor:
    def prepare(self, items):
        return Batch(items, [True] * len(items))

    def call_tickets(self, batch):
        pass

    def record(self, batch):
        return batch.done

    def release(self, batch):
        pass


def test_draining_full_batches_signals_a_backlog_until_the_mailbox_is_empty():
    backlog = poller.Backlog(patience=10)
    full = [[(str(uid), b"mail") for uid in range(start, start + 3)] for start in (1, 4)]
    mailbox = Mailbox(full + [[("7", b"mail")]], backlog)
    assert poller.drain(mailbox, Ingestor(), batch_size=3, backlog=backlog) == 7
    assert mailbox.backlog_at_fetch == [False, True, True]  # signalled once a full batch came
    assert backlog.began is None and mailbox.marked == [str(uid) for uid in range(1, 8)]


def test_a_short_poll_is_no_backlog():
    backlog = poller.Backlog(patience=10)
    mailbox = Mailbox([[("1", b"mail"), ("2", b"mail")]], backlog)
    poller.drain(mailbox, Ingestor(), batch_size=3, backlog=backlog)
    assert mailbox.backlog_at_fetch == [False]


def waiter(backlog):
    thread = threading.Thread(target=backlog.wait_turn, daemon=True)
    thread.start()
    return thread


def test_outgoing_mail_waits_while_a_backlog_is_read_and_goes_when_it_ends():
    backlog = poller.Backlog(patience=600)
    idle = waiter(backlog)
    idle.join(10)
    assert not idle.is_alive()  # no backlog: no wait

    backlog.begin()
    waiting = waiter(backlog)
    waiting.join(0.2)
    assert waiting.is_alive()
    backlog.end()
    waiting.join(10)
    assert not waiting.is_alive()


def test_the_wait_is_bounded_by_the_patience_and_zero_never_waits():
    backlog = poller.Backlog(patience=0.05)
    backlog.begin()
    bounded = waiter(backlog)
    bounded.join(10)
    assert not bounded.is_alive() and backlog.began is not None  # the backlog goes on; mail goes out

    never = poller.Backlog(patience=0)
    never.begin()
    thread = waiter(never)
    thread.join(10)
    assert not thread.is_alive()
