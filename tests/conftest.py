"""End-to-end fixtures: the whole platform as processes, on SQLite and on PostgreSQL."""
import os
import subprocess
import sys
import threading
import uuid

import psycopg2
import pytest
from kombu import Connection, Exchange, Queue

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import BIN, ROOT, Stack, wait_for  # noqa: E402

PG_DSN = os.environ.get("HELPDESK_TEST_PG", "dbname=postgres user=postgres host=127.0.0.1")


class PostgresDatabase:
    """A throwaway PostgreSQL database on the local server."""

    def __init__(self):
        self.name = f"helpdesk_e2e_{uuid.uuid4().hex[:10]}"

    def _admin(self, sql):
        connection = psycopg2.connect(PG_DSN)
        connection.autocommit = True
        try:
            connection.cursor().execute(sql)
        finally:
            connection.close()

    def create(self):
        self._admin(f"CREATE DATABASE {self.name}")
        return f"postgresql://postgres@127.0.0.1/{self.name}"

    def drop(self):
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def database_url(kind):
    """(url, cleanup) for a fresh database of ``kind``."""
    if kind == "postgres":
        database = PostgresDatabase()
        return database.create(), database.drop
    return None, lambda: None


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def platform(request, tmp_path_factory):
    """Every process of the platform, started once per test module and database kind."""
    url, cleanup = database_url(request.param)
    stack = Stack(tmp_path_factory.mktemp(f"stack-{request.param}"), tickets_db_url=url)
    try:
        stack.start()
        stack.kind = request.param
        yield stack
    finally:
        stack.stop()
        cleanup()


@pytest.fixture
def api(platform):
    """An HTTP session with the admin (bootstrap) token."""
    return platform.session()


def create_token(stack, role, email=None, teams=()):
    """A token made with the operator's command, as a deployment would."""
    argv = [os.path.join(BIN, "helpdesk"), "token", "create", "--name", f"test-{role}", "--role", role]
    if email:
        argv += ["--email", email]
    for team in teams:
        argv += ["--team", team]
    result = subprocess.run(argv, cwd=ROOT, env=stack.env(), check=True, capture_output=True, text=True)
    return result.stdout.strip()


class EventRecorder:
    """Listens to ``tickets.events`` (bound before the test acts) and keeps every envelope."""

    def __init__(self, amqp_uri):
        self.amqp_uri = amqp_uri
        self.events = []
        self.error = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self._consume()
        except BaseException as error:  # surfaced by wait(), so a dead listener never looks like a lost event
            self.error = error
            raise

    def _consume(self):
        exchange = Exchange("tickets.events", type="topic", durable=True)
        with Connection(self.amqp_uri) as connection:
            queue = Queue(f"e2e-{uuid.uuid4().hex[:8]}", exchange, routing_key="#", exclusive=True)

            def keep(body, message):
                self.events.append(body)
                message.ack()

            with connection.Consumer(queue, callbacks=[keep], accept=["json"]):
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        connection.drain_events(timeout=0.1)
                    except TimeoutError:
                        pass

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(10), "the event listener did not start"
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def of(self, event_type, number=None):
        return [e for e in self.events if e["type"] == event_type
                and (number is None or e.get("subject") == number)]

    def wait(self, event_type, number=None, count=1, timeout=20):
        assert self.error is None, f"the event listener died: {self.error!r}"
        return wait_for(lambda: len(self.of(event_type, number)) >= count and self.of(event_type, number),
                        timeout=timeout, what=f"{count} {event_type} event(s) for {number}")


@pytest.fixture
def events(platform):
    with EventRecorder(platform.amqp_uri) as recorder:
        yield recorder


def new_ticket(**overrides):
    body = {"subject": "VPN drops every few minutes", "description": "Since the update the VPN disconnects.",
            "requester": {"email": f"user-{uuid.uuid4().hex[:6]}@example.com", "name": "Ann Example"},
            "priority": "normal"}
    body.update(overrides)
    return body
