"""Test support shared by every service's tests: waiting with a deadline, and listening to events as an
integrator would. Plain kombu, no nameko: usable from unit, interface and end-to-end tests alike."""
import atexit
import os
import socket
import sqlite3
import tempfile
import time
import uuid
from contextlib import contextmanager

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


# --- databases: migrated once per test process, handed out fresh ------------------------------------

DATABASE_KINDS = ("sqlite", "postgres")


def database_params(kinds=DATABASE_KINDS):
    """The ``params`` of a fixture that gives a test its database on each of ``kinds``: SQLite, and
    PostgreSQL (marked ``postgres``: it needs the server on 127.0.0.1:5432)."""
    import pytest  # only the test suites call this

    return [pytest.param(kind, marks=pytest.mark.postgres) if kind == "postgres" else kind for kind in kinds]


def _admin_connection(dsn=None):
    import psycopg2  # only the tests that use PostgreSQL need it

    admin = psycopg2.connect(dsn or PG_ADMIN_DSN)
    admin.autocommit = True
    return admin


class MigratedDatabases:
    """Each service's schema, migrated once per test process by its own migration code or command into a
    template, then handed out fresh: a test or a stack pays for a copy, not for the migrations, and still
    gets a database nobody else is using, with nothing in it.

    - SQLite: the template file copied (SQLite's backup API, so a write-ahead log is copied too).
    - PostgreSQL: a database created from the template database (``CREATE DATABASE ... TEMPLATE``) the first
      time; given back afterwards, it is kept and handed out again emptied: sessions still connected ended
      (as ``DROP DATABASE ... WITH (FORCE)`` would), every table truncated, every sequence restarted. A new
      database costs about half a second and dropping it as much again; emptying one, a few milliseconds.
      Its URL differs each time it is handed out, so that nothing a process keeps per URL survives.
      Every database made here is dropped when the process ends.

    ``admin_dsn`` and ``url_prefix``: the server (the local one on 5432 by default; the soak passes a server of
    its own, which it may restart without harming anybody else's tests).
    """

    def __init__(self, admin_dsn=None, url_prefix=None):
        self.admin_dsn = admin_dsn or PG_ADMIN_DSN
        self.url_prefix = url_prefix or PG_URL_PREFIX
        self._folder = None
        self._templates = {}  # (name, kind) -> template URL
        self._schema = {}  # name -> (tables, sequences) of its PostgreSQL databases
        self._idle = {}  # name -> PostgreSQL URLs given back, to hand out again emptied
        self._postgres = []  # every PostgreSQL database made here, dropped at the end of the process
        self._handed_out = 0
        atexit.register(self.drop_all)

    def templates(self, kind, names, migrate_all):
        """Make the templates of ``names`` not made yet, with ``migrate_all({name: url})`` (free to migrate
        them at once). Returns {name: template URL}."""
        missing = [name for name in names if (name, kind) not in self._templates]
        if missing:
            if kind == "sqlite":
                self._folder = self._folder or tempfile.mkdtemp(prefix="helpdesk-db-templates-")
                urls = {name: f"sqlite:///{self._folder}/{name}.db" for name in missing}
            else:
                urls = {name: self._create(f"{name}_template") for name in missing}
            migrate_all(urls)
            for name, url in urls.items():
                _dispose(url)
                if kind == "postgres":
                    self._schema[name] = _tables_and_sequences(url)
                self._templates[(name, kind)] = url
        return {name: self._templates[(name, kind)] for name in names}

    def template(self, name, kind, migrate):
        """The URL of ``name``'s migrated template of ``kind``, made by ``migrate(url)`` at the first call."""
        return self.templates(kind, [name], lambda urls: migrate(urls[name]))[name]

    @contextmanager
    def fresh(self, name, kind, migrate, folder=None):
        """A migrated, empty database of its own: a SQLite file ``<folder>/<name>.db`` or a PostgreSQL database
        (given back on leaving). Yields its URL."""
        template = self.template(name, kind, migrate)
        if kind == "sqlite":
            path = os.path.join(str(folder), f"{name}.db")
            copy_sqlite(_sqlite_path(template), path)
            url = f"sqlite:///{path}"
            try:
                yield url
            finally:
                _dispose(url)
            return
        idle = self._idle.setdefault(name, [])
        if idle:
            database = idle.pop()
            _empty(database, *self._schema[name], admin_dsn=self.admin_dsn)
        else:
            database = self._create(f"{name}_test", template=template.rsplit("/", 1)[1])
        # A URL of its own each time (the server ignores the name it carries): what a process keeps per
        # database URL (its engine, a cache of rows by id) never outlives the test that filled it.
        self._handed_out += 1
        url = f"{database}?application_name=helpdesk_test_{os.getpid()}_{self._handed_out}"
        try:
            yield url
        finally:
            _dispose(url)
            idle.append(database)

    def _create(self, prefix, template=None):
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        admin = _admin_connection(self.admin_dsn)
        try:
            with admin.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
                # No fsync wait per commit: the tests commit a lot; locking, so any concurrency under test,
                # is unchanged (a setting of the database: not copied from a template, so set on each).
                cursor.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        finally:
            admin.close()
        url = self.url_prefix + name
        self._postgres.append(url)
        return url

    def drop_all(self):
        """Drop every PostgreSQL database made here (at the end of the process)."""
        if not self._postgres:
            return
        try:
            admin = _admin_connection(self.admin_dsn)
        except Exception:  # noqa: BLE001 - the server may be gone at exit; the names are throwaway
            return
        try:
            with admin.cursor() as cursor:
                for url in self._postgres:
                    _dispose(url)
                    cursor.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        finally:
            admin.close()
        self._postgres.clear()


def _dispose(url):
    from .adapters.database import engine_for  # (pulls in nameko: kept out of the module's imports)

    engine_for(url).dispose()


def _sqlite_path(url):
    return url.split("sqlite:///", 1)[1]


def copy_sqlite(source, destination):
    """Copy a SQLite database file with SQLite's backup API (correct whatever its journal mode)."""
    os.makedirs(os.path.dirname(os.path.abspath(destination)), exist_ok=True)
    with sqlite3.connect(source) as origin, sqlite3.connect(destination) as copy:
        origin.backup(copy)
    origin.close()
    copy.close()


def _tables_and_sequences(url):
    import psycopg2

    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
        tables = sorted(row[0] for row in cursor.fetchall())
        for table in tables:
            cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{table}")')
            # A migration that seeds rows would need the rows back after each truncation: say so, loudly.
            assert not cursor.fetchone()[0], f"{url}: the migrations put rows in {table}; an emptied database would lack them"
        cursor.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
        sequences = sorted(row[0] for row in cursor.fetchall())
    connection.close()
    return tables, sequences


def _empty(url, tables, sequences, admin_dsn=None):
    import psycopg2

    database = url.rsplit("/", 1)[1]
    admin = _admin_connection(admin_dsn)
    try:
        with admin.cursor() as cursor:  # sessions an earlier test left open would block the truncation
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
    finally:
        admin.close()
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        if tables:
            cursor.execute("TRUNCATE " + ", ".join(f'"{table}"' for table in tables) + " RESTART IDENTITY CASCADE")
        for sequence in sequences:
            cursor.execute(f'ALTER SEQUENCE "{sequence}" RESTART')
    connection.close()


DATABASES = MigratedDatabases()


def database_fixtures(service, upgrade, kinds=DATABASE_KINDS):
    """The ``db_url`` and ``sessions`` fixtures of a service's tests, for its conftest.py::

        db_url, sessions = database_fixtures("routing", upgrade)

    ``db_url``: a migrated database of the test's own, once on SQLite and once on PostgreSQL (the test runs
    twice: ``[sqlite]``, ``[postgres]``); ``sessions``: a session factory on it (the engine the service uses).
    A test module whose database is incidental (pages rendered, HTTP plumbing) may narrow ``kinds`` with
    the same line of its own; the README of the tests says which do.
    """
    import pytest
    from sqlalchemy.orm import sessionmaker

    from .adapters.database import engine_for

    @pytest.fixture(params=database_params(kinds))
    def db_url(request, tmp_path):
        with migrated_test_database(service, tmp_path, upgrade, request.param) as url:
            yield url

    @pytest.fixture
    def sessions(db_url):
        return sessionmaker(engine_for(db_url), expire_on_commit=False)

    return db_url, sessions


@contextmanager
def migrated_test_database(service, folder, upgrade, kind="sqlite"):
    """The database one test of a service runs on, migrated by ``upgrade(url)`` and empty: a SQLite file in
    ``folder``, or (``kind="postgres"``) a PostgreSQL database nobody else is using. Yields its URL."""
    with DATABASES.fresh(service, kind, upgrade, folder) as url:
        yield url
