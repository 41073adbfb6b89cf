"""The group commit (``helpdesk_common.group_commit.Collector``): what waits together is handled together.

The collector needs only two things of its nameko container (its config and a way to spawn its
greenthread), so these tests give it a small stand-in instead of starting a service on a broker; the
services' interface tests run it in real containers (routing's new tickets, tickets' write-back).
"""
import eventlet
import pytest

from helpdesk_common.adapters.group_commit import BATCH_FAILURES, Collector


class Container:
    """Stand-in for nameko's ServiceContainer: config, service name, managed threads."""

    service_name = "group-commit-test"

    def __init__(self, config=None):
        self.config, self.threads = config or {}, []

    def spawn_managed_thread(self, run):
        self.threads.append(eventlet.spawn(run))


@pytest.fixture
def collector():
    collector = Collector("BATCH_MAX", max_batch=200)
    collector.container = Container({"BATCH_MAX": 3})
    collector.setup()
    collector.start()
    yield collector
    collector.stop()
    for thread in collector.container.threads:
        thread.wait()


class Handler:
    """Records the batches it was given; ``bad`` items fail."""

    def __init__(self, bad=()):
        self.batches, self.alone, self.bad = [], [], set(bad)

    def run_batch(self, items):
        self.batches.append(list(items))
        return [self.run(item) for item in items]

    def run_one(self, item):
        self.alone.append(item)
        return self.run(item)

    def run(self, item):
        if item in self.bad:
            raise ValueError(f"bad item {item}")
        return item * 10


def submit_together(collector, handler, items):
    """Submit each item from its own greenthread (as nameko's workers do); each one's outcome."""
    workers = [eventlet.spawn(collector.submit, item, handler.run_batch, handler.run_one) for item in items]
    outcomes = []
    for worker in workers:
        try:
            outcomes.append(worker.wait())
        except ValueError as error:
            outcomes.append(str(error))
    return outcomes


def test_a_lone_item_is_handled_at_once_in_a_batch_of_one(collector):
    handler = Handler()
    assert collector.submit(4, handler.run_batch, handler.run_one) == 40
    assert handler.batches == [[4]] and handler.alone == []


def test_items_waiting_together_share_batches_no_larger_than_configured(collector):
    handler = Handler()
    assert submit_together(collector, handler, range(7)) == [n * 10 for n in range(7)]
    assert [len(batch) for batch in handler.batches] == [3, 3, 1]  # BATCH_MAX from config
    assert [item for batch in handler.batches for item in batch] == list(range(7))


def test_a_failing_batch_is_rerun_item_by_item_so_a_bad_item_fails_alone(collector):
    handler = Handler(bad={4})
    failures = BATCH_FAILURES.labels("group-commit-test")._value.get()
    outcomes = submit_together(collector, handler, [3, 4, 5])
    assert outcomes == [30, "bad item 4", 50]
    assert handler.alone == [3, 4, 5]
    assert BATCH_FAILURES.labels("group-commit-test")._value.get() == failures + 1


def test_stopping_hands_out_what_is_still_waiting():
    collector = Collector(max_batch=2)
    collector.container = Container()
    collector.setup()
    handler = Handler()
    waiting = [eventlet.spawn(collector.submit, item, handler.run_batch, handler.run_one) for item in (1, 2, 3)]
    eventlet.sleep(0)  # they queue up before the collector runs
    collector.start()
    collector.stop()
    assert [worker.wait() for worker in waiting] == [10, 20, 30]


def test_without_run_one_a_failing_batch_fails_every_item_with_its_error(collector):
    """For writes that fail as a whole (a search index): no rerun one by one; the next batch runs."""
    handler = Handler(bad={4})

    def submit(item):
        try:
            return collector.submit(item, handler.run_batch)
        except ValueError as error:
            return str(error)

    workers = [eventlet.spawn(submit, item) for item in (3, 4, 5)]
    assert [worker.wait() for worker in workers] == ["bad item 4"] * 3
    assert handler.alone == [] and handler.batches == [[3, 4, 5]]
    assert collector.submit(6, handler.run_batch) == 60


def test_linger_lets_items_arriving_a_moment_later_join_the_batch():
    collector = Collector(max_batch=50, linger=0.05)
    collector.container = Container()
    collector.setup()
    collector.start()
    handler = Handler()
    try:
        first = eventlet.spawn(collector.submit, 1, handler.run_batch)
        eventlet.sleep(0.01)  # a delivery of the same prefetch, a little later
        second = eventlet.spawn(collector.submit, 2, handler.run_batch)
        assert (first.wait(), second.wait()) == (10, 20)
        assert handler.batches == [[1, 2]]
    finally:
        collector.stop()
        for thread in collector.container.threads:
            thread.wait()


def test_handle_runs_a_delivered_batch_at_once_and_sends_a_lone_item_through_the_group_commit(collector):
    handler = Handler()
    assert collector.handle([1, 2, 3, 4], handler.run_batch, handler.run_one) == [10, 20, 30, 40]
    assert handler.batches == [[1, 2, 3, 4]]  # not cut to the collector's largest batch (3): it came whole
    lone = [eventlet.spawn(collector.handle, [n], handler.run_batch, handler.run_one) for n in (5, 6)]
    assert [worker.wait() for worker in lone] == [[50], [60]]
    assert handler.batches[1:] == [[5, 6]]  # lone ones arriving together share a batch


def test_with_a_size_a_batch_takes_items_until_their_sizes_reach_the_largest_batch():
    """Items that are lists of events (a delivered relay batch each) count by their events: lists waiting
    together share a transaction up to ``max_batch`` events, and a list larger than that still goes alone."""
    collector = Collector(max_batch=5, size=len)
    collector.container = Container()
    collector.setup()
    batches = []

    def run_batch(items):
        batches.append([len(item) for item in items])
        return [len(item) for item in items]

    waiting = [eventlet.spawn(collector.submit, ["e"] * n, run_batch) for n in (2, 3, 1, 7, 4)]
    eventlet.sleep(0)  # all five wait before the collector runs
    collector.start()
    try:
        assert [worker.wait() for worker in waiting] == [2, 3, 1, 7, 4]
        assert batches == [[2, 3], [1], [7], [4]]
    finally:
        collector.stop()
        for thread in collector.container.threads:
            thread.wait()
