"""Test support shared by every service's tests: waiting with a deadline, and listening to events as an
integrator would. Plain kombu, no nameko: usable from unit, interface and end-to-end tests alike."""
import os
import socket
import time
import uuid
from contextlib import ExitStack, contextmanager

from kombu import Connection, Exchange, Queue, binding

from .adapters.exchanges import event_exchanges
from .events import exchange_name

# The local server the tests create their throwaway databases on (trust authentication).
PG_ADMIN_DSN = os.environ.get("HELPDESK_TEST_PG", "dbname=postgres user=postgres host=127.0.0.1")
PG_URL_PREFIX = "postgresql://postgres@127.0.0.1:5432/"


def wait_for(condition, timeout=20.0, message="condition", interval=0.02):
    """Poll ``condition`` until it returns something truthy (and return that); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def publish_events(amqp_uri, envelopes, source=None):
    """Publish ``envelopes`` as a service's outbox relay does with one batch of rows: each on
    ``<source>.events`` (integrators' stream) and grouped by type on ``<source>.batches`` (the platform's
    own handlers), in one confirm round. ``source``: the envelopes' own by default."""
    from .adapters.relay import ConfirmedPublisher  # nameko and the database layer: only for the tests that publish

    events, batches = event_exchanges(source or envelopes[0]["source"])
    publisher = ConfirmedPublisher(amqp_uri, events, batch_exchange=batches)
    try:
        publisher.publish_batch(list(envelopes))
    finally:
        publisher.close()


class EventTap:
    """A queue bound to ``<source>.events`` (every event by default, or the event types ``routing_key``
    names: one, or a list), declared at once: whatever the service publishes after the tap exists lands
    here. Read it with the ``wait_for*`` methods."""

    def __init__(self, amqp_uri, source, routing_key="#"):
        self.connection = Connection(amqp_uri)
        exchange = Exchange(exchange_name(source), type="topic", durable=True)
        keys = [routing_key] if isinstance(routing_key, str) else list(routing_key)
        self.queue = Queue(f"test-tap-{uuid.uuid4().hex}", bindings=[binding(exchange, routing_key=key) for key in keys],
                           exclusive=True, auto_delete=True)
        self.messages = []  # (envelope, kombu message): tests may check AMQP properties too
        self.consumer = self.connection.Consumer(self.queue, callbacks=[self._received], accept=["json"])
        self.consumer.consume()  # declares exchange, queue and binding now, before anything happens

    def _received(self, body, message):
        self.messages.append((body, message))
        message.ack()

    @property
    def envelopes(self):
        return [body for body, _ in self.messages]

    @property
    def ids(self):
        return [body["id"] for body, _ in self.messages]

    def of(self, event_type):
        return [envelope for envelope in self.envelopes if envelope["type"] == event_type]

    def wait_for(self, condition, timeout=20.0, message="events"):
        """Consume until ``condition(envelopes)`` holds; returns the envelopes."""
        deadline = time.monotonic() + timeout
        while not condition(self.envelopes):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {message}; got {[e['type'] for e in self.envelopes]}")
            try:
                self.connection.drain_events(timeout=min(remaining, 0.25))
            except socket.timeout:
                pass
        return self.envelopes

    def wait_for_types(self, types, timeout=10.0):
        """Consume until exactly these event types arrived, in this order."""
        return self.wait_for(lambda got: [e["type"] for e in got] == types, timeout, message=str(types))

    def wait_for_ids(self, ids, timeout=10.0):
        """Consume until every id in ``ids`` arrived; returns all ids received so far."""
        self.wait_for(lambda _: set(ids) <= set(self.ids), timeout, message=f"{len(ids)} event ids")
        return self.ids

    def close(self):
        self.connection.release()


@contextmanager
def scratch_postgres_database(prefix="helpdesk_test", fast=False):
    """A fresh, empty PostgreSQL database on the local server; yields its URL and drops it afterwards
    (closing this process's pooled connections to it first).

    ``fast``: no fsync wait per commit (``synchronous_commit = off``) for tests that commit a lot; locking,
    and so any concurrency under test, is unchanged.
    """
    import psycopg2  # only the tests that use PostgreSQL need it

    from .adapters.database import engine_for  # (pulls in nameko: kept out of the module's imports)

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(PG_ADMIN_DSN)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
            if fast:
                cursor.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        url = PG_URL_PREFIX + name
        try:
            yield url
        finally:
            engine_for(url).dispose()
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@contextmanager
def migrated_test_database(service, folder, upgrade):
    """The database a service's tests run on, migrated by ``upgrade(url)``: a SQLite file in ``folder``, or
    a throwaway PostgreSQL database when ``HELPDESK_TEST_<SERVICE>_DB=postgresql`` (the same tests on the
    production database). Yields its URL; disposes of its engine (and drops a PostgreSQL one) afterwards."""
    from .adapters.database import engine_for  # (pulls in nameko: kept out of the module's imports)

    with ExitStack() as stack:
        url = (stack.enter_context(scratch_postgres_database(f"{service}_test"))
               if os.environ.get(f"HELPDESK_TEST_{service.upper()}_DB") == "postgresql"
               else f"sqlite:///{folder}/{service}.db")
        upgrade(url)
        yield url
        engine_for(url).dispose()
