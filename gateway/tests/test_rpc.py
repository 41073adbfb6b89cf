"""rpc.py: RpcPool against the real RabbitMQ, each test in a throwaway vhost (nameko's ``rabbit_config``),
with a tiny nameko service in a real container where a service must answer."""

import eventlet
import pytest
from nameko.rpc import rpc

from helpdesk_common.errors import EXPECTED_ERRORS, NotFound, ValidationFailed
from helpdesk_gateway.rpc import RpcPool, ServiceUnavailable


class TinyService:
    name = "gateway_test_tiny"

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def echo(self, value, suffix=""):
        return {"echo": value, "suffix": suffix}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def missing(self, number):
        raise NotFound(f"No ticket {number}.", code="ticket_not_found", details=[{"field": "number"}])

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def invalid(self):
        raise ValidationFailed("Bad.", details=[{"field": "subject", "code": "too_short", "message": "x"}])

    @rpc
    def database_down(self):
        from sqlalchemy.exc import OperationalError  # as a service's engine raises it while PostgreSQL restarts

        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    @rpc
    def broken(self):
        raise RuntimeError("a bug")

    @rpc
    def slow(self, seconds):
        eventlet.sleep(seconds)
        return "late"


@pytest.fixture
def make_pool():
    pools = []

    def make(amqp_uri, size=4, timeout=5.0):
        pool = RpcPool(amqp_uri, size, timeout)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


@pytest.fixture
def tiny(container_factory, rabbit_config):
    container = container_factory(TinyService, rabbit_config)
    container.start()
    return container


def count_starts(pool, monkeypatch):
    """Count the proxies the pool starts (the real ``_start`` still runs)."""
    started = []
    original = pool._start

    def start():
        started.append(original())
        return started[-1]

    monkeypatch.setattr(pool, "_start", start)
    return started


def unavailable(pool, service, method, *args):
    with pytest.raises(ServiceUnavailable) as caught:
        pool.call(service, method, *args)
    assert caught.value.status == 503
    return caught.value.code


def test_calling_a_service_nobody_runs_is_service_unavailable_at_once(make_pool, rabbit_config):
    pool = make_pool(rabbit_config["AMQP_URI"], timeout=300)
    # the broker returned the message: service_unavailable, not the service_timeout of waiting 300 s
    assert unavailable(pool, "tickets", "ping") == "service_unavailable"
    assert unavailable(pool, "tickets", "ping") == "service_unavailable"


def test_a_broker_that_refuses_connections_is_broker_unavailable(make_pool, dead_amqp_uri):
    pool = make_pool(dead_amqp_uri, size=1, timeout=0.5)
    for _ in range(2):  # the one slot is given back after a failure: the second call is not "at its limit"
        assert unavailable(pool, "tickets", "ping") == "broker_unavailable"
    assert pool._idle.qsize() == 0


def test_a_real_service_answers_through_one_reused_proxy_and_its_errors_keep_their_class(
        make_pool, rabbit_config, tiny, monkeypatch):
    pool = make_pool(rabbit_config["AMQP_URI"])
    started = count_starts(pool, monkeypatch)
    assert pool.call(TinyService.name, "echo", "hello", suffix="!") == {"echo": "hello", "suffix": "!"}
    with pytest.raises(NotFound) as caught:
        pool.call(TinyService.name, "missing", "HD-9")
    error = caught.value
    assert (error.status, error.code, error.message, error.details) == \
        (404, "ticket_not_found", "No ticket HD-9.", [{"field": "number"}])
    with pytest.raises(ValidationFailed) as caught:
        pool.call(TinyService.name, "invalid")
    assert caught.value.code == "validation_failed" and caught.value.details[0]["code"] == "too_short"
    assert pool.call(TinyService.name, "echo", [1, 2]) == {"echo": [1, 2], "suffix": ""}
    assert len(started) == 1  # a remote error leaves the proxy healthy: it went back to the pool
    assert pool._idle.qsize() == 1
    with pool.proxy() as proxy:
        assert proxy is started[0][1]


def test_a_call_that_outlives_the_timeout_is_service_timeout_and_its_proxy_is_discarded(
        make_pool, rabbit_config, tiny, monkeypatch):
    pool = make_pool(rabbit_config["AMQP_URI"], size=1, timeout=0.3)
    started = count_starts(pool, monkeypatch)
    discarded = []
    original_discard = pool._discard
    monkeypatch.setattr(pool, "_discard", lambda cluster: discarded.append(cluster) or original_discard(cluster))
    # the reply would come after 1.5 s: a timeout, not the reply, ended the call
    assert unavailable(pool, TinyService.name, "slow", 1.5) == "service_timeout"
    assert pool._idle.qsize() == 0
    assert discarded == [started[0][0]]  # the proxy that timed out was stopped, not given back
    assert pool.call(TinyService.name, "echo", "again")["echo"] == "again"  # a fresh one; the slot was freed
    assert len(started) == 2 and pool._idle.qsize() == 1


def test_gathered_calls_answer_in_order_on_one_proxy_and_an_error_comes_after_every_reply_is_taken(
        make_pool, rabbit_config, tiny, monkeypatch):
    pool = make_pool(rabbit_config["AMQP_URI"])
    started = count_starts(pool, monkeypatch)
    calls = [(TinyService.name, "echo", n) for n in range(5)]
    assert pool.gather(calls) == [{"echo": n, "suffix": ""} for n in range(5)]
    with pytest.raises(NotFound):
        pool.gather([(TinyService.name, "echo", "a"), (TinyService.name, "missing", "HD-1"),
                     (TinyService.name, "echo", "b")])
    # the proxy went back healthy with no reply left over: the next answers are this call's own
    assert pool.gather([(TinyService.name, "echo", "c"), (TinyService.name, "echo", "d")]) == [
        {"echo": "c", "suffix": ""}, {"echo": "d", "suffix": ""}]
    assert len(started) == 1


def test_a_service_whose_database_is_unreachable_is_a_503_to_retry_and_a_bug_stays_a_remote_error(
        make_pool, rabbit_config, tiny, monkeypatch):
    """The soak (tests/soak.py) saw every call answered 500 while PostgreSQL restarted: a service's
    OperationalError means "not now", and a client retries a 503; any other unexpected error is still one."""
    from nameko.exceptions import RemoteError

    pool = make_pool(rabbit_config["AMQP_URI"])
    started = count_starts(pool, monkeypatch)
    assert unavailable(pool, TinyService.name, "database_down") == "service_unavailable"
    with pytest.raises(RemoteError) as caught:
        pool.call(TinyService.name, "broken")
    assert caught.value.exc_type == "RuntimeError"
    assert len(started) == 1 and pool._idle.qsize() == 1  # the service answered: its proxy was kept
