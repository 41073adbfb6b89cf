"""batching.py: BatchCaller coalesces concurrent calls and hands each caller its own answer or error.

Callers are threads (green ones: the root conftest monkey-patched ``threading``, as nameko needs).
The pool is a small fake: it is the unit's collaborator, standing in for RpcPool, so that each test
decides what one batched call answers and sees exactly which batches were sent.
"""
import threading
import time

import pytest

from helpdesk_common.errors import Forbidden, HelpdeskError, NotFound, ValidationFailed, to_wire
from helpdesk_gateway.batching import BatchCaller
from helpdesk_gateway.rpc import ServiceUnavailable


class FakePool:
    """Records each ``call(service, method, items)``; ``answer(items)`` decides what it returns.

    While ``gate`` is closed, calls wait at it, so callers can queue up behind a batch in flight.
    """

    def __init__(self, answer=None):
        self.answer = answer or (lambda items: [{"echo": item} for item in items])
        self.batches = []
        self.gate = threading.Event()
        self.gate.set()

    def call(self, service, method, items):
        assert (service, method) == ("tickets", "create_tickets")
        self.batches.append(list(items))
        assert self.gate.wait(timeout=10), "the test never opened the gate"
        return self.answer(items)


class Caller(threading.Thread):
    """One request thread: ``batcher.call(item)``, keeping what it got back or what it raised."""

    def __init__(self, batcher, item):
        super().__init__(daemon=True)
        self.batcher, self.item = batcher, item
        self.result = self.error = None
        self.start()

    def run(self):
        try:
            self.result = self.batcher.call(self.item)
        except Exception as error:
            self.error = error

    def outcome(self, timeout=5):
        self.join(timeout)
        assert not self.is_alive(), f"caller {self.item} never got an answer"
        return self.error if self.error is not None else self.result


def batcher(pool, **options):
    return BatchCaller(pool, "tickets", "create_tickets", **options)


def test_callers_queued_behind_a_batch_in_flight_are_coalesced_in_batches_of_max_batch(wait_until):
    pool = FakePool()
    pool.gate.clear()
    caller = batcher(pool, max_batch=3, lanes=1)
    first = Caller(caller, 0)
    wait_until(lambda: pool.batches == [[0]], message="the first call to be sent alone")
    queued = [Caller(caller, number) for number in range(1, 9)]
    wait_until(lambda: caller._waiting.qsize() == 8, message="eight callers to queue up")
    pool.gate.set()
    assert first.outcome() == {"echo": 0}
    for waiting in queued:
        assert waiting.outcome() == {"echo": waiting.item}  # each caller gets the answer to its own item
    assert [len(batch) for batch in pool.batches] == [1, 3, 3, 2]
    assert sorted(item for batch in pool.batches[1:] for item in batch) == list(range(1, 9))


def test_many_concurrent_callers_each_get_their_own_answer_in_batches_never_above_max_batch():
    def answer(items):
        time.sleep(0.01)  # a round trip, so that callers pile up meanwhile
        return [{"number": f"HD-{item['n']:06d}", "by": item["who"]} for item in items]

    pool = FakePool(answer)
    caller = batcher(pool, max_batch=4, lanes=2)
    callers = [Caller(caller, {"n": n, "who": f"client-{n}"}) for n in range(40)]
    for one in callers:
        assert one.outcome() == {"number": f"HD-{one.item['n']:06d}", "by": one.item["who"]}
    sizes = [len(batch) for batch in pool.batches]
    assert max(sizes) <= 4
    assert len(pool.batches) < 40  # coalesced: fewer calls than callers
    assert sorted(item["n"] for batch in pool.batches for item in batch) == list(range(40))  # each sent once


def test_an_item_error_reaches_only_its_own_caller_as_the_right_class(wait_until):
    failures = {
        "missing": NotFound("No ticket HD-9.", code="ticket_not_found"),
        "invalid": ValidationFailed("Bad subject.", details=[{"field": "subject", "code": "too_short",
                                                              "message": "at least 1"}]),
        "forbidden": Forbidden("Not yours.", code="requester_mismatch"),
    }

    def answer(items):
        return [{"error": to_wire(failures[item])} if item in failures else {"ticket": item, "created": True}
                for item in items]

    pool = FakePool(answer)
    pool.gate.clear()
    caller = batcher(pool, lanes=1)
    blocker = Caller(caller, "first")
    wait_until(lambda: len(pool.batches) == 1, message="the first batch")
    items = ["ok-1", "missing", "ok-2", "invalid", "forbidden", "ok-3"]
    callers = [Caller(caller, item) for item in items]
    wait_until(lambda: caller._waiting.qsize() == len(items), message="every caller to queue")
    pool.gate.set()
    assert blocker.outcome() == {"ticket": "first", "created": True}
    assert pool.batches[1] == items  # the errors came back from one shared call
    for one in callers:
        got = one.outcome()
        if one.item in failures:
            expected = failures[one.item]
            assert type(got) is type(expected)
            assert (got.status, got.code, got.message, got.details) == \
                (expected.status, expected.code, expected.message, expected.details)
        else:
            assert got == {"ticket": one.item, "created": True}


def test_an_error_of_a_kind_not_known_here_arrives_as_a_helpdesk_error():
    pool = FakePool(lambda items: [{"error": {"type": "QuotaExceeded", "message": "Too many.", "code": "quota"}}])
    with pytest.raises(HelpdeskError) as caught:
        batcher(pool).call("x")
    assert type(caught.value) is HelpdeskError and (caught.value.code, caught.value.message) == ("quota", "Too many.")


def test_a_failure_of_the_whole_call_reaches_every_caller_of_that_batch_and_no_other(wait_until):
    outage = ServiceUnavailable("The tickets service did not answer.", code="service_timeout")

    def answer(items):
        if "doomed" in items[0]:
            raise outage
        return [{"echo": item} for item in items]

    pool = FakePool(answer)
    pool.gate.clear()
    caller = batcher(pool, lanes=1)
    first = Caller(caller, "doomed-0")
    wait_until(lambda: len(pool.batches) == 1, message="the first batch")
    doomed = [Caller(caller, f"doomed-{n}") for n in range(1, 5)]
    wait_until(lambda: caller._waiting.qsize() == 4, message="four callers to queue")
    pool.gate.set()
    for one in [first, *doomed]:
        assert one.outcome() is outage
    assert pool.batches == [["doomed-0"], [f"doomed-{n}" for n in range(1, 5)]]
    assert caller.call("later") == {"echo": "later"}  # the lane survived the failure


def test_a_lone_call_is_sent_at_once():
    pool = FakePool()
    caller = batcher(pool, max_batch=64)
    for round_ in range(3):
        assert caller.call({"round": round_}) == {"echo": {"round": round_}}
    assert pool.batches == [[{"round": 0}], [{"round": 1}], [{"round": 2}]]


def test_a_caller_that_waited_too_long_gets_a_503_and_its_item_is_never_sent(wait_until):
    pool = FakePool()
    pool.gate.clear()  # the only lane is stuck in a slow call
    caller = batcher(pool, lanes=1, timeout=0.2)
    stuck = Caller(caller, "slow")
    wait_until(lambda: pool.batches == [["slow"]], message="the slow batch")
    with pytest.raises(ServiceUnavailable) as caught:
        caller.call("impatient")
    assert (caught.value.status, caught.value.code) == (503, "service_timeout")
    assert isinstance(stuck.outcome(), ServiceUnavailable)
    pool.gate.set()
    assert caller.call("next") == {"echo": "next"}
    assert pool.batches == [["slow"], ["next"]]  # the abandoned item was dropped, not sent late


def test_an_answer_that_breaks_the_contract_fails_its_batch_at_once_but_not_the_lane(wait_until):
    answers = iter([None, [{"echo": "a"}], [{"echo": "c"}]])
    pool = FakePool(lambda items: next(answers))
    caller = batcher(pool, lanes=1, timeout=5)
    with pytest.raises(RuntimeError, match="answered NoneType for 1 items"):
        caller.call("x")  # answered None instead of a list: learnt at once, not as a service_timeout (503)
    pool.gate.clear()
    first = Caller(caller, "a")
    wait_until(lambda: len(pool.batches) == 2, message="the second batch")
    short = [Caller(caller, "b"), Caller(caller, "c")]
    wait_until(lambda: caller._waiting.qsize() == 2, message="two callers to queue")
    pool.gate.set()
    assert first.outcome() == {"echo": "a"}  # the lane lived on
    for one in short:  # one answer for two items: neither caller may get the other's answer
        error = one.outcome()
        assert isinstance(error, RuntimeError) and "1 results for 2 items" in str(error)
