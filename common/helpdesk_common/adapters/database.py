"""Engines, and the nameko dependency that hands each worker a database session.

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

from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

SQLITE_BUSY_TIMEOUT_S = 30


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
