"""Engines and the nameko dependency that hands each worker a database session.

SQLite (embedded default) and PostgreSQL (production) behave the same to callers. Two things matter
under eventlet:

- psycopg2 is a C driver: without psycogreen it blocks the whole process on every query, so a service
  on PostgreSQL makes it green before the first connection.
- SQLite serialises writers. A greenthread that waited in SQLite's busy handler would block the very
  process that holds the lock, so each process uses one connection, shared in turn through a green-aware
  pool: writers queue in Python instead of spinning in C. Between processes WAL and a busy timeout apply.
"""
import functools
import os
import random
import time
from datetime import datetime, timezone

from nameko.extensions import DependencyProvider
from sqlalchemy import DateTime, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

SQLITE_BUSY_TIMEOUT_S = 30


def utcnow():
    """The current time, UTC, aware: the one clock every table uses."""
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator):
    """A timestamp stored as UTC and always read back as an aware datetime (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given where UTC was expected")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def _is_eventlet_patched():
    try:
        import eventlet.patcher
    except ImportError:  # pragma: no cover - eventlet is always installed with nameko
        return False
    return eventlet.patcher.is_monkey_patched("socket")


def make_psycopg_green():
    """Let psycopg2 yield to other greenthreads while it waits on the network."""
    from psycogreen.eventlet import patch_psycopg

    patch_psycopg()


@functools.lru_cache(maxsize=None)
def engine_for(url):
    """One engine per URL per process, shared by the service's workers and its outbox relay."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
        if not database or database == ":memory:":
            # One connection holds an in-memory database: every session must share it.
            engine = create_engine(url, poolclass=StaticPool, connect_args=connect_args)
        else:
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
            engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=SQLITE_BUSY_TIMEOUT_S,
                                   connect_args=connect_args)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            # Let SQLAlchemy, not the sqlite3 module, say when a transaction begins (the documented
            # recipe): savepoints then work, and BEGIN can be IMMEDIATE.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection):
            # IMMEDIATE takes the write lock up front: a replica that read first and wrote second would
            # otherwise fail at once with "database is locked" instead of waiting its turn.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.drivername == "postgresql":
        # SQLAlchemy 2.1 defaults to psycopg 3; psycopg2 is the driver psycogreen makes green.
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() == "postgresql" and _is_eventlet_patched():
        make_psycopg_green()
    return create_engine(parsed, pool_size=20, max_overflow=10, pool_pre_ping=True)


RETRYABLE_PG_CODES = ("40001", "40P01")  # serialization failure, deadlock detected


def is_retryable(error):
    """A transaction that failed only because a concurrent one got there first, and may simply be rerun:
    a unique key taken meanwhile, a deadlock, a serialization failure, SQLite busy beyond its timeout."""
    if isinstance(error, IntegrityError):
        return True
    if isinstance(error, OperationalError):
        code = getattr(getattr(error, "orig", None), "pgcode", None)
        return code in RETRYABLE_PG_CODES or "database is locked" in str(error)
    return False


def run_in_transaction(sessions, change, attempts=3):
    """Run ``change(session)`` in one transaction; rerun it when it lost a race with a concurrent one.

    The rerun sees what the other transaction committed (the contact it created, the idempotency key it
    recorded), so it takes the path that agrees with it.
    """
    for attempt in range(1, attempts + 1):
        try:
            with sessions.begin() as session:
                return change(session)
        except DBAPIError as error:
            if attempt == attempts or not is_retryable(error):
                raise
            time.sleep(random.uniform(0.001, 0.01) * attempt)  # green under eventlet; spreads the rerun


class Database(DependencyProvider):
    """Gives each worker a ``sessionmaker``; use ``with self.db.begin() as session:`` for one transaction.

    :param config_key: the config entry holding the database URL (e.g. ``TICKETS_DB_URL``).
    """

    def __init__(self, config_key):
        self.config_key = config_key
        self.engine = None
        self.sessions = None

    def setup(self):
        self.engine = engine_for(self.container.config[self.config_key])
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def stop(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return self.sessions
