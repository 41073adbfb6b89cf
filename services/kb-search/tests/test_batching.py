"""Handlers waiting at the same moment share one index write; a failed write fails each of them (so each
event is retried or parked on its own), and the next batch runs as usual. Green threads, no broker."""
import eventlet
import pytest

from kb_search.batching import IndexBatcher


class Recorder:
    def __init__(self, fail_first=False):
        self.batches, self.fail_first = [], fail_first

    def __call__(self, deliveries):
        self.batches.append(list(deliveries))
        if self.fail_first and len(self.batches) == 1:
            raise RuntimeError("index unavailable")
        return {d: d[0] % 2 == 0 for d in deliveries}  # even event ids "applied", odd ones "repeats"


def test_waiting_handlers_share_one_write_and_each_gets_its_own_answer():
    batcher, apply = IndexBatcher(), Recorder()
    pool = eventlet.GreenPool()
    answers = list(pool.imap(lambda n: batcher.submit((n, "index_published", n), apply), range(20)))
    assert len(apply.batches) == 1 and sorted(d[0] for d in apply.batches[0]) == list(range(20))
    assert answers == [n % 2 == 0 for n in range(20)]


def test_a_batch_is_never_larger_than_max_batch():
    batcher, apply = IndexBatcher(max_batch=7), Recorder()
    list(eventlet.GreenPool().imap(lambda n: batcher.submit((n, "h", n), apply), range(20)))
    assert [len(b) for b in apply.batches] == [7, 7, 6]


def test_a_failed_write_fails_every_handler_of_its_batch_and_the_next_batch_runs():
    batcher, apply = IndexBatcher(), Recorder(fail_first=True)

    def submit(n):
        try:
            return batcher.submit((n, "h", n), apply)
        except RuntimeError as error:
            return str(error)

    assert list(eventlet.GreenPool().imap(submit, range(5))) == ["index unavailable"] * 5
    assert batcher.submit((8, "h", 8), apply) is True  # the retry of one of them
    assert len(apply.batches) == 2


@pytest.mark.parametrize("linger", [0, 0.01])
def test_a_lone_event_is_applied_at_once(linger):
    apply = Recorder()
    assert IndexBatcher(linger=linger).submit((4, "h", 4), apply) is True
    assert apply.batches == [[(4, "h", 4)]]
