"""The outbox relay on a real RabbitMQ (throwaway vhost per test), on SQLite and on PostgreSQL.

A tiny service of its own (one outbox table, a relay, an entrypoint that stages events) keeps these
tests about the shared library, not about any one service's rules.
"""
import socket
import uuid
from datetime import timedelta
from unittest import mock

import eventlet
import pytest
from nameko.exceptions import RemoteError
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.utils import find_free_port, get_extension
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from sqlalchemy.orm import DeclarativeBase, sessionmaker

from helpdesk_common.adapters.database import Database, engine_for
from helpdesk_common.database import utcnow
from helpdesk_common.adapters.relay import OutboxRelay
from helpdesk_common.outbox import OutboxMixin, pending_count, stage, stage_many, wake_relays
from helpdesk_common.testing import EventTap, scratch_postgres_database, wait_for

SOURCE = "outbox_test"


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


class RelayOnly:
    """Nothing but a database and a relay: what is left of a service whose workers are idle."""

    name = "outbox_relay_only"
    db = Database("DB_URL")
    outbox = OutboxRelay(Outbox, "DB_URL", source=SOURCE)


class Emitter(RelayOnly):
    """Stages events in a worker's transaction, as a service's command would."""

    name = "outbox_emitter"

    @rpc
    def emit(self, count, fail=False):
        with self.db.begin() as session:
            envelopes = [envelope(n) for n in range(count)]
            for item in envelopes:
                stage(session, Outbox, item)
            if fail:
                raise ValueError("the command fails after staging: nothing may leave")
        return [item["id"] for item in envelopes]


class LingeringEmitter(Emitter):
    """Stages and commits, then keeps its worker busy (a slow reply, other work) before returning."""

    name = "outbox_lingering_emitter"

    @rpc
    def emit_and_linger(self, count, seconds):
        with self.db.begin() as session:
            envelopes = [envelope(n) for n in range(count)]
            stage_many(session, Outbox, envelopes)
        with eventlet.Timeout(seconds, False):  # busy until the test lets it go (at most ``seconds``)
            LINGERING["release"].wait()
        return [item["id"] for item in envelopes]


LINGERING = {"release": None}  # the event a test sends when its lingering worker may return


def envelope(n=0, correlation_id=None):
    return {"id": str(uuid.uuid4()), "type": "thing_happened", "source": SOURCE, "time": utcnow().isoformat(),
            "specversion": "1.0", "schema_version": 1, "correlation_id": correlation_id or f"corr-{n}",
            "subject": None, "datacontenttype": "application/json", "data": {"n": n}}


def failures():
    return REGISTRY.get_sample_value("helpdesk_outbox_publish_failures_total", {"source": SOURCE}) or 0


def _sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'outbox.db'}"


@pytest.fixture
def pg_url():
    with scratch_postgres_database("outbox_test") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    url = _sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("pg_url")
    Base.metadata.create_all(engine_for(url))
    yield url
    engine_for(url).dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    url = _sqlite_url(tmp_path)
    Base.metadata.create_all(engine_for(url))
    yield url
    engine_for(url).dispose()


@pytest.fixture
def sessions(db_url):
    return sessionmaker(engine_for(db_url), expire_on_commit=False)


@pytest.fixture
def config(rabbit_config, db_url):
    return {**rabbit_config, "DB_URL": db_url, "OUTBOX_POLL_INTERVAL": 0.1}


@pytest.fixture
def tap(rabbit_config):
    tap = EventTap(rabbit_config["AMQP_URI"], SOURCE)
    yield tap
    tap.close()


def stage_rows(sessions, count, start=0):
    envelopes = [envelope(start + n) for n in range(count)]
    with sessions.begin() as session:
        for item in envelopes:
            stage(session, Outbox, item)
    return [item["id"] for item in envelopes]


def rows(sessions):
    with sessions() as session:
        return session.execute(select(Outbox.event_id, Outbox.published_at).order_by(Outbox.seq)).all()


def published(sessions):
    return [event_id for event_id, at in rows(sessions) if at is not None]


def unpublished(sessions):
    return [event_id for event_id, at in rows(sessions) if at is None]


def relay_of(container):
    return get_extension(container, OutboxRelay)


# --- staging -------------------------------------------------------------------------------------

def test_stage_is_part_of_the_callers_transaction(sessions):
    with pytest.raises(RuntimeError):
        with sessions.begin() as session:
            stage(session, Outbox, envelope())
            raise RuntimeError("rolled back")
    assert rows(sessions) == []
    ids = stage_rows(sessions, 2)
    assert [event_id for event_id, _ in rows(sessions)] == ids
    with sessions() as session:
        assert pending_count(session, Outbox) == 2


# --- relaying ------------------------------------------------------------------------------------

def test_worker_commits_leave_at_once_and_are_marked(container_factory, config, sessions, tap):
    """Woken by each commit that staged rows, the relay does not wait for its poll (a minute here)."""
    container = container_factory(Emitter, {**config, "OUTBOX_POLL_INTERVAL": 60})
    container.start()
    with ServiceRpcProxy(Emitter.name, config, timeout=10) as emitter:
        ids = emitter.emit(3)
        with pytest.raises(RemoteError) as failed:
            emitter.emit(2, fail=True)  # rolled back: these never reach the outbox
        assert failed.value.exc_type == "ValueError"
        sentinel = emitter.emit(1)
    received = tap.wait_for_ids(ids + sentinel, timeout=5)
    assert received == ids + sentinel  # in commit order, once each, nothing from the failed command
    body, message = tap.messages[0]
    assert body["data"] == {"n": 0} and body["source"] == SOURCE
    assert message.delivery_info["routing_key"] == "thing_happened"
    assert message.properties["message_id"] == ids[0]
    assert message.headers["correlation_id"] == "corr-0"
    wait_for(lambda: published(sessions) == ids + sentinel, message="rows marked published")
    with sessions() as session:
        assert pending_count(session, Outbox) == 0


def test_rows_leave_when_their_transaction_commits_not_when_the_worker_ends(container_factory, config, sessions,
                                                                            tap):
    """The commit wakes the relay: the events are out while the worker that wrote them still runs (and
    rows staged outside any worker of the service leave as promptly); the poll (a minute) never comes."""
    container = container_factory(LingeringEmitter, {**config, "OUTBOX_POLL_INTERVAL": 60})
    container.start()
    LINGERING["release"] = release = eventlet.Event()
    with ServiceRpcProxy(LingeringEmitter.name, config, timeout=90) as emitter:
        # the worker stays busy until released (45 s at most) and the poll comes after 60: events seen
        # before the release were sent by the commit
        reply = emitter.emit_and_linger.call_async(2, 45)
        tap.wait_for(lambda envelopes: len(envelopes) == 2, timeout=30, message="events before the worker ended")
        ids = stage_rows(sessions, 3)  # committed by a session of this process, no worker at all
        assert tap.wait_for_ids(ids, timeout=5)[-3:] == ids
        release.send()
        assert len(reply.result()) == 2


def test_quiet_commits_wait_for_wake_relays_then_leave_in_one_batch(container_factory, config, sessions, tap):
    """A transaction per item staged with ``wake=False`` (here on a Core connection, as intake records each
    mail it sent) wakes nobody; one ``wake_relays`` sends them all together, without waiting for the poll."""
    container = container_factory(RelayOnly, {**config, "OUTBOX_POLL_INTERVAL": 60})
    container.start()
    relay = relay_of(container)
    batches = []
    publish = relay._publisher.publish_batch
    relay._publisher.publish_batch = lambda envelopes: batches.append(len(envelopes)) or publish(envelopes)
    engine = sessions.kw["bind"]
    items = [envelope(n) for n in range(4)]
    for item in items:
        with engine.begin() as connection:
            stage(connection, Outbox, item, wake=False)
    eventlet.sleep(0.5)  # woken, the relay would have sent them by now (test_worker_commits_leave_at_once...)
    assert batches == [] and unpublished(sessions) == [item["id"] for item in items]
    wake_relays(Outbox)
    assert tap.wait_for_ids([item["id"] for item in items], timeout=5) == [item["id"] for item in items]
    assert batches == [4]
    wait_for(lambda: unpublished(sessions) == [], message="rows marked published")


def test_a_core_connection_cannot_stage_rows_that_wake_at_commit(sessions):
    with sessions.kw["bind"].begin() as connection:
        with pytest.raises(TypeError):
            stage(connection, Outbox, envelope())
    assert rows(sessions) == []


def test_rows_left_unsent_are_sent_once_by_the_next_relay(container_factory, config, sessions, tap):
    """Rows committed while no relay could send them (a stopped or crashed process) are sent by the
    next one to start on the same database, once, and marked."""
    first = container_factory(RelayOnly, config)
    first.start()
    before = stage_rows(sessions, 1)
    tap.wait_for_ids(before)
    wait_for(lambda: published(sessions) == before, message="first row marked")
    first.stop()

    left_behind = stage_rows(sessions, 5, start=1)
    assert unpublished(sessions) == left_behind
    second = container_factory(RelayOnly, config)
    second.start()
    tap.wait_for_ids(left_behind)
    wait_for(lambda: published(sessions) == before + left_behind, message="rows marked published")

    # a sentinel staged last arrives last: anything sent twice would have arrived before it
    sentinel = stage_rows(sessions, 1, start=99)
    received = tap.wait_for_ids(sentinel)
    assert received == before + left_behind + sentinel
    second.stop()


def test_a_row_is_marked_only_after_its_publish_succeeded(container_factory, config, sessions, tap):
    container = container_factory(RelayOnly, config)
    container.start()
    relay = relay_of(container)
    real_publish = relay._publisher.publish_batch
    calls, retried, release = [], eventlet.event.Event(), eventlet.event.Event()

    def flaky_publish(envelopes):
        calls.extend(envelope["id"] for envelope in envelopes)
        if len(calls) == 1:
            raise ConnectionError("broker went away")
        retried.send(True)
        release.wait()  # hold the retry until the test has looked at the row
        return real_publish(envelopes)

    failed_before = failures()
    with mock.patch.object(relay._publisher, "publish_batch", side_effect=flaky_publish), \
            mock.patch.object(relay, "retry_delay", 0.05):
        [event_id] = stage_rows(sessions, 1)
        relay.wake()
        with eventlet.Timeout(10, AssertionError("the relay never retried the failed row")):
            retried.wait()
        assert calls == [event_id, event_id]
        assert failures() == failed_before + 1
        assert unpublished(sessions) == [event_id]  # the failed attempt left it for the retry
        assert tap.ids == []
        release.send(True)
        tap.wait_for_ids([event_id])
        wait_for(lambda: published(sessions) == [event_id], message="row marked after the retry")
    sentinel = stage_rows(sessions, 1, start=1)
    assert tap.wait_for_ids(sentinel) == [event_id] + sentinel


def test_a_graceful_stop_finishes_the_batch_in_flight(container_factory, config, sessions, tap):
    """Stopping the service (a deploy) while a batch is being published: the batch is completed and
    marked, so the next relay does not send it again."""
    container = container_factory(RelayOnly, config)
    container.start()
    relay = relay_of(container)
    real_publish = relay._publisher.publish_batch
    ids = []
    inside, release = eventlet.event.Event(), eventlet.event.Event()

    def slow_publish(envelopes):
        if any(envelope["id"] == ids[1] for envelope in envelopes):
            inside.send(True)
            release.wait()
        return real_publish(envelopes)

    with mock.patch.object(relay._publisher, "publish_batch", side_effect=slow_publish):
        ids.extend(stage_rows(sessions, 3))
        relay.wake()
        with eventlet.Timeout(10, AssertionError("the relay never started the batch")):
            inside.wait()
        stopping = eventlet.spawn(container.stop)
        wait_for(lambda: not relay._running, message="the stop to begin")
        release.send(True)
        with eventlet.Timeout(10, AssertionError("the container did not stop")):
            stopping.wait()
    assert published(sessions) == ids

    successor = container_factory(RelayOnly, config)
    successor.start()
    sentinel = stage_rows(sessions, 1, start=9)
    assert tap.wait_for_ids(sentinel) == ids + sentinel  # nothing sent twice


def test_a_failure_mid_batch_marks_nothing_and_loses_nothing(mock_container, rabbit_config, db_url, sessions,
                                                              tap):
    """Driven by hand: rows before the failure were sent but are not marked, so they go again (at least
    once); the failed row and those after it were never sent and are sent on the next pass."""
    mock_container.config.update({**rabbit_config, "DB_URL": db_url})
    relay = OutboxRelay(Outbox, "DB_URL", source=SOURCE).bind(mock_container, "outbox")
    relay.setup()
    ids = stage_rows(sessions, 3)
    real_publish = relay._publisher.publish_batch

    def fails_after_the_first(envelopes):
        real_publish(envelopes[:1])
        raise ConnectionError("broker went away")

    with mock.patch.object(relay._publisher, "publish_batch", side_effect=fails_after_the_first):
        with pytest.raises(ConnectionError):
            relay.relay_pending()
    assert unpublished(sessions) == ids
    assert tap.wait_for_ids(ids[:1]) == ids[:1]

    assert relay.relay_pending() is False  # not a full batch: nothing more waiting
    assert published(sessions) == ids
    assert tap.wait_for_ids(ids) == [ids[0]] + ids  # the first one twice, none lost


def test_full_batches_are_drained_in_order(container_factory, config, sessions, tap):
    ids = stage_rows(sessions, 450)  # more than two batches of 200
    container = container_factory(RelayOnly, config)
    container.start()
    assert tap.wait_for_ids(ids, timeout=20) == ids
    wait_for(lambda: len(published(sessions)) == 450, message="every row marked")


def test_old_published_rows_are_purged(mock_container, rabbit_config, db_url, sessions, tap):
    mock_container.config.update({**rabbit_config, "DB_URL": db_url})
    relay = OutboxRelay(Outbox, "DB_URL", source=SOURCE).bind(mock_container, "outbox")
    relay.setup()
    old_sent, recent_sent, old_unsent = stage_rows(sessions, 3)
    long_ago = utcnow() - relay.retention - timedelta(hours=1)
    with sessions.begin() as session:
        session.execute(update(Outbox).where(Outbox.event_id == old_sent).values(published_at=long_ago))
        session.execute(update(Outbox).where(Outbox.event_id == recent_sent).values(published_at=utcnow()))
        session.execute(update(Outbox).where(Outbox.event_id == old_unsent).values(created_at=long_ago))
    assert relay.relay_pending() is False  # sends the one pending row
    assert tap.wait_for_ids([old_unsent]) == [old_unsent]
    assert relay.relay_pending() is False  # nothing pending: purges what was sent long ago
    assert [event_id for event_id, _ in rows(sessions)] == [recent_sent, old_unsent]


# --- the broker goes away and comes back ---------------------------------------------------------

class Link:
    """A TCP proxy in front of RabbitMQ that a test can cut (refusing connections) and restore."""

    def __init__(self, target=("127.0.0.1", 5672)):
        self.target = target
        self.port = find_free_port()
        self.server = self.acceptor = None
        self.sockets = []

    def up(self):
        self.server = eventlet.listen(("127.0.0.1", self.port))
        self.acceptor = eventlet.spawn(self._accept, self.server)

    def _accept(self, server):
        while True:
            client, _ = server.accept()
            upstream = eventlet.connect(self.target)
            self.sockets += [client, upstream]
            eventlet.spawn(self._pipe, client, upstream)
            eventlet.spawn(self._pipe, upstream, client)

    @staticmethod
    def _pipe(source, target):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def down(self):
        self.acceptor.kill()
        self.server.close()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sockets = []

    def uri(self, vhost):
        return f"pyamqp://guest:guest@127.0.0.1:{self.port}/{vhost}"


def test_rows_committed_while_the_broker_is_unreachable_are_sent_when_it_is_back(
        container_factory, rabbit_config, sqlite_url, tap):
    sessions = sessionmaker(engine_for(sqlite_url), expire_on_commit=False)
    link = Link()
    link.up()
    config = {**rabbit_config, "AMQP_URI": link.uri(rabbit_config["vhost"]), "DB_URL": sqlite_url,
              "OUTBOX_POLL_INTERVAL": 0.1}
    # keep each failed attempt short (nameko's default retries for seconds before giving up)
    with mock.patch.object(OutboxRelay, "retry_delay", 0.05):
        container = container_factory(RelayOnly, config)
        container.start()
        before = stage_rows(sessions, 1)
        tap.wait_for_ids(before)
        wait_for(lambda: published(sessions) == before, message="row sent while the link is up")

        link.down()
        failed_before = failures()
        during = stage_rows(sessions, 3, start=1)
        wait_for(lambda: failures() >= failed_before + 2, message="failed attempts while the broker is away")
        assert unpublished(sessions) == during
        assert set(tap.ids) == set(before)

        link.up()
        tap.wait_for_ids(during)
        wait_for(lambda: published(sessions) == before + during, message="rows marked after the outage")
        sentinel = stage_rows(sessions, 1, start=9)
        assert tap.wait_for_ids(sentinel) == before + during + sentinel
        container.stop()
    link.down()


# --- PostgreSQL: replicas share one outbox -------------------------------------------------------

@pytest.mark.postgres
def test_two_relays_on_postgresql_send_each_row_once(container_factory, rabbit_config, pg_url, tap):
    Base.metadata.create_all(engine_for(pg_url))
    sessions = sessionmaker(engine_for(pg_url), expire_on_commit=False)
    ids = stage_rows(sessions, 450)
    config = {**rabbit_config, "DB_URL": pg_url, "OUTBOX_POLL_INTERVAL": 0.1}
    replicas = [container_factory(RelayOnly, config) for _ in range(2)]
    for replica in replicas:
        replica.start()
    more = stage_rows(sessions, 50, start=450)
    for replica in replicas:
        relay_of(replica).wake()
    tap.wait_for_ids(ids + more, timeout=20)
    wait_for(lambda: len(published(sessions)) == 500, message="every row marked")
    sentinel = stage_rows(sessions, 1, start=999)
    received = tap.wait_for_ids(sentinel)
    assert sorted(received) == sorted(ids + more + sentinel)  # none twice, none lost
    assert len(received) == 501
