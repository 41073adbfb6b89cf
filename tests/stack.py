"""Start the platform as real processes on loopback, for end-to-end tests and benchmarks.

Each stack gets its own RabbitMQ virtual host (so it never shares queues with a developer's
``make run`` or another test run) and its own databases; it starts the services and the gateway as
separate processes, exactly as ``make run`` does, waits for ``/health`` and stops them all.
"""
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

import requests
from kombu import Connection, Queue

from helpdesk_common import testing
from helpdesk_common.adapters.exchanges import event_exchanges
from helpdesk_common.testing import DATABASES, copy_sqlite

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
AMQP = os.environ.get("HELPDESK_TEST_AMQP", "pyamqp://guest:guest@127.0.0.1:5672/")
RABBIT_API = os.environ.get("HELPDESK_TEST_RABBIT_API", "http://guest:guest@127.0.0.1:15672")


# The services besides tickets: (folder, migration command).
SERVICES = {"intake": ("services/intake", "intake-migrate"), "routing": ("services/routing", "routing-migrate"),
            "kb_search": ("services/kb-search", "kb-migrate"), "surveys": ("services/surveys", "surveys-migrate"),
            "analytics": ("services/analytics", "analytics-migrate")}

# Every database of a stack, and the command that migrates it (as an operator would: the real commands).
MIGRATIONS = {"tickets": "tickets-migrate", "gateway": "helpdesk",
              **{name: command for name, (_, command) in SERVICES.items()}}
MIGRATED = set()  # URLs handed out migrated already (database_url): the stack need not migrate them again


def migration(name, url):
    """The argv that migrates database ``name`` at ``url``."""
    command = os.path.join(BIN, MIGRATIONS[name])
    if name == "gateway":  # ``helpdesk --db URL migrate``: the URL is the group's option
        return [command, "--db", url, "migrate"]
    return [command, "--url", url]


def run_all(argvs, env=None):
    """Run commands at once (each is mostly Python starting up) and wait for all; fail with the output of one
    that failed."""
    running = [(argv, subprocess.Popen(argv, cwd=ROOT, env=env or os.environ, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT)) for argv in argvs]
    failed = []
    for argv, process in running:
        output, _ = process.communicate()
        if process.returncode:
            failed.append(f"{' '.join(argv)} exited {process.returncode}: {output.decode(errors='replace')}")
    assert not failed, "\n".join(failed)


def migrate_with_command(name):
    """``migrate(url)`` for ``helpdesk_common.testing.DATABASES``: the service's own migration command."""
    return lambda url: run_all([migration(name, url)])


def templates(kind, registry=DATABASES):
    """Every database's template of ``kind`` in ``registry`` (a ``MigratedDatabases``: the local server's by
    default), made at the first call (their commands all at once)."""
    return registry.templates(kind, list(MIGRATIONS),
                              lambda urls: run_all([migration(name, url) for name, url in urls.items()]))


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Poll ``predicate`` until it returns something truthy; fail clearly after ``timeout``."""
    return testing.wait_for(predicate, timeout=timeout, message=what, interval=interval)


class Vhost:
    """A throwaway RabbitMQ virtual host, created and deleted through the management API."""

    def __init__(self, name=None):
        self.name = name or f"helpdesk-test-{uuid.uuid4().hex[:10]}"
        parts = urllib.parse.urlsplit(RABBIT_API)
        self.api = f"{parts.scheme}://{parts.hostname}:{parts.port}/api"
        self.auth = (parts.username, parts.password)
        self.quoted = urllib.parse.quote(self.name, safe="")

    # A shared broker's vhost operations wait behind other suites' (deleting a vhost of many quorum queues
    # held them for over a minute on 2026-12-07): slow then is not broken.
    TIMEOUT = 180

    def create(self):
        requests.put(f"{self.api}/vhosts/{self.quoted}", auth=self.auth, timeout=self.TIMEOUT).raise_for_status()
        requests.put(f"{self.api}/permissions/{self.quoted}/{self.auth[0]}", auth=self.auth, timeout=self.TIMEOUT,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        return self

    def delete(self):
        requests.delete(f"{self.api}/vhosts/{self.quoted}", auth=self.auth, timeout=self.TIMEOUT)

    @property
    def amqp_uri(self):
        return AMQP.rstrip("/") + "/" + self.quoted


class Stack:
    """Every service (tickets in one or more replicas, intake, routing, kb_search, surveys, analytics) and the
    gateway, as processes.

    :param workdir: where SQLite files and logs go.
    :param tickets_db_url: the tickets database (default: a SQLite file in ``workdir``).
    :param databases: ``"sqlite"`` (files in ``workdir``) or ``"postgres"`` (a scratch PostgreSQL database for
        every service and the gateway, given back by ``stop``); by default ``"postgres"`` when ``tickets_db_url``
        is a PostgreSQL one. Databases of the stack's own are copied from templates migrated once per test
        process with the services' migration commands; a URL set from outside is migrated with its command.
    :param postgres: the ``MigratedDatabases`` the PostgreSQL databases come from (the local server's by default;
        the soak's is a server of its own, which it restarts).
    """

    def __init__(self, workdir, tickets_db_url=None, gateway_workers=1, gateway_threads=16, env=None,
                 services=tuple(SERVICES), databases=None, postgres=None):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.vhost = Vhost()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = "hd_test_" + secrets.token_urlsafe(16)
        self.databases = databases or ("postgres" if (tickets_db_url or "").startswith("postgresql") else "sqlite")
        self.registry = postgres or DATABASES
        self._own_databases = []  # context managers of the PostgreSQL databases this stack made (stop drops them)
        if self.databases == "postgres":
            self.tickets_db_url = tickets_db_url or self._own_postgres("tickets")
            self.gateway_db_url = self._own_postgres("gateway")
            self.service_db_urls = {name: self._own_postgres(name) for name in SERVICES}
        else:
            self.tickets_db_url = tickets_db_url or f"sqlite:///{self.workdir}/tickets.db"
            self.gateway_db_url = f"sqlite:///{self.workdir}/gateway.db"
            self.service_db_urls = {name: f"sqlite:///{self.workdir}/{name}.db" for name in SERVICES}
        self.service_names = tuple(services)  # besides tickets, which always runs
        self.gateway_workers = gateway_workers
        self.gateway_threads = gateway_threads
        self.extra_env = env or {}
        self.tickets = []
        self.services = {}
        self.gateway = None

    @property
    def amqp_uri(self):
        return self.vhost.amqp_uri

    def env(self, **extra):
        env = dict(os.environ)
        env.update({
            "PYTHONWARNINGS": "ignore",
            "HELPDESK_AMQP_URI": self.amqp_uri,
            "HELPDESK_TICKETS_DB_URL": self.tickets_db_url,
            "HELPDESK_GATEWAY_DB_URL": self.gateway_db_url,
            "HELPDESK_INTAKE_DB_URL": self.service_db_urls["intake"],
            "HELPDESK_ROUTING_DB_URL": self.service_db_urls["routing"],
            "HELPDESK_KB_DB_URL": self.service_db_urls["kb_search"],
            "HELPDESK_SURVEYS_DB_URL": self.service_db_urls["surveys"],
            "HELPDESK_PUBLIC_URL": self.url,
            "HELPDESK_ANALYTICS_DB_URL": self.service_db_urls["analytics"],
            "HELPDESK_KB_INDEX_DIR": os.path.join(self.workdir, "kb-index"),
            "HELPDESK_ATTACHMENTS_DIR": os.path.join(self.workdir, "attachments"),
            "HELPDESK_BOOTSTRAP_TOKEN": self.token,
            "HELPDESK_PORT": str(self.port),
            "HELPDESK_GATEWAY_WORKERS": str(self.gateway_workers),
            "HELPDESK_GATEWAY_THREADS": str(self.gateway_threads),
            "HELPDESK_RPC_TIMEOUT": "5",
            "HELPDESK_SERVICES": ",".join(("tickets", *self.service_names)),
            # The suite sends thousands of requests from one address and opens streams faster than closed
            # ones are noticed: limits far above that; tests/test_rate_limits.py sets tight ones on Redis.
            "HELPDESK_RATE_LIMIT_ANONYMOUS": "100000/minute", "HELPDESK_RATE_LIMIT_COSTLY": "100000/minute",
            "HELPDESK_RATE_LIMIT_TOKEN": "1000000/minute", "HELPDESK_RATE_LIMIT_ADDRESS": "1000000/minute",
            "HELPDESK_STREAMS_PER_ADDRESS": "1000",
            # The shared single broker node: quorum queues there buy nothing and, thousands of Raft groups
            # made and deleted with each stack's vhost, stalled its vhost operations for every other run
            # (deploy/README.md). A stack on a cluster passes HELPDESK_QUEUE_TYPE=quorum in ``env``.
            "HELPDESK_QUEUE_TYPE": "classic",
        })
        env.update(self.extra_env)
        env.update({key: str(value) for key, value in extra.items()})
        return env

    def _spawn(self, name, argv, env):
        log = open(os.path.join(self.workdir, f"{name}.log"), "ab")
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def _own_postgres(self, name):
        templates("postgres", self.registry)
        database = self.registry.fresh(name, "postgres", migrate_with_command(name))
        url = database.__enter__()
        self._own_databases.append(database)
        MIGRATED.add(url)
        return url

    def migrate(self):
        """Bring every database to the latest schema: the stack's own SQLite files copied from the migrated
        templates, any other database not migrated yet with its service's command (all at once)."""
        commands = []
        for name, url in (("tickets", self.tickets_db_url), ("gateway", self.gateway_db_url),
                          *self.service_db_urls.items()):
            if url in MIGRATED:
                continue
            own_file = os.path.join(self.workdir, f"{name}.db")
            if url == f"sqlite:///{own_file}" and not os.path.exists(own_file):
                copy_sqlite(templates("sqlite")[name].removeprefix("sqlite:///"), own_file)
            else:
                commands.append(migration(name, url))
        run_all(commands, env=self.env())

    def start_tickets(self, **env):
        """Start one more tickets replica; returns its process."""
        process = self._spawn(f"tickets-{len(self.tickets)}",
                              [os.path.join(BIN, "nameko"), "run", "helpdesk_tickets.service", "--config",
                               "services/tickets/config.yaml"], self.env(**env))
        self.tickets.append(process)
        return process

    def start_service(self, name, **env):
        """Start (or restart) the one process of service ``name`` (intake, routing, kb_search)."""
        folder = SERVICES[name][0]
        command = [os.path.join(BIN, "nameko"), "run", f"helpdesk_{name}.service", "--config", f"{folder}/config.yaml"]
        self.services[name] = self._spawn(name, command, self.env(**env))
        return self.services[name]

    def start_gateway(self):
        # Only the gateway's gunicorn workers share metrics through prometheus_client's multiprocess mode.
        self.gateway = self._spawn("gateway", [os.path.join(BIN, "gunicorn"), "-c", "gateway/gunicorn.conf.py",
                                               "helpdesk_gateway.app:create_app()"],
                                   self.env(PROMETHEUS_MULTIPROC_DIR=os.path.join(self.workdir, "prometheus")))

    def start(self, tickets_replicas=1):
        self.vhost.create()
        self.migrate()
        for _ in range(tickets_replicas):
            self.start_tickets()
        for name in self.service_names:
            self.start_service(name)
        self.start_gateway()
        self.wait_healthy()
        return self

    def healthy(self):
        try:
            return requests.get(f"{self.url}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def wait_healthy(self, timeout=60):
        wait_for(self.healthy, timeout=timeout, interval=0.1, what=f"{self.url}/health")

    def session(self, token=None):
        """A requests session that sends JSON with a bearer token (the admin one by default)."""
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token or self.token}"
        return http

    def stop_process(self, process, sig=signal.SIGTERM, timeout=20):
        if process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop(self, timeout=20):
        """Stop every process (all asked at once: each takes seconds to finish its work), then delete the
        stack's vhost and give back its PostgreSQL databases (emptied, they serve the next stack)."""
        processes = [p for p in [self.gateway, *self.tickets, *self.services.values()] if p is not None]
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.vhost.delete()
        while self._own_databases:
            self._own_databases.pop().__exit__(None, None, None)

    def log(self, name):
        with open(os.path.join(self.workdir, f"{name}.log"), errors="replace") as stream:
            return stream.read()


# --- helpers the end-to-end tests share -------------------------------------------------------------

@contextlib.contextmanager
def running_stack(workdir, kind="sqlite", **options):
    """A started ``Stack`` with every database on ``kind`` (``"sqlite"`` or ``"postgres"``), stopped (and its
    PostgreSQL databases dropped) afterwards. ``options`` go to ``Stack``."""
    stack = Stack(workdir, databases=kind, **options)
    try:
        stack.kind = kind
        stack.start()
        yield stack
    finally:
        stack.stop()


def stack_fixture(name, kinds=testing.DATABASE_KINDS, **options):
    """A module's stack fixture: the platform started once per test module and database kind (the tests run
    as ``[sqlite]`` and ``[postgres]``)::

        stack = stack_fixture("analytics", gateway_workers=2)
    """
    import pytest  # the benchmarks import this module too, without pytest

    @pytest.fixture(scope="module", params=testing.database_params(kinds))
    def stack(request, tmp_path_factory):
        with running_stack(tmp_path_factory.mktemp(f"stack-{name}-{request.param}"), request.param,
                           **options) as started:
            yield started

    return stack


def database_url(kind):
    """(url, cleanup) for a fresh tickets database of ``kind`` (None for SQLite: the stack makes its files).
    A PostgreSQL one, passed as ``Stack(tickets_db_url=...)``, puts every database of the stack on
    PostgreSQL."""
    if kind == "postgres":
        templates("postgres")
        database = DATABASES.fresh("tickets", "postgres", migrate_with_command("tickets"))
        url = database.__enter__()
        MIGRATED.add(url)
        return url, lambda: database.__exit__(None, None, None)
    return None, lambda: None


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
    """Listens to ``<source>.events`` (bound before the test acts) and keeps every envelope; ``routing_key``
    narrows it to one event type (a benchmark that listens to less takes less CPU from what it measures).

    ``batches=True`` listens to the batched stream instead (``<source>.batches``, a relay batch per message,
    as the platform's own handlers do): the same envelopes, for a fraction of the broker's and the
    listener's CPU (a benchmark's listener is not the measured platform)."""

    def __init__(self, amqp_uri, source="tickets", routing_key="#", batches=False):
        self.amqp_uri = amqp_uri
        self.source = source
        self.routing_key = routing_key
        self.batches = batches
        self.events = []
        self.arrived = []  # time.time() at which each of ``events`` arrived, same order (benchmarks' delays)
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
        exchange = event_exchanges(self.source)[1 if self.batches else 0]
        with Connection(self.amqp_uri) as connection:
            queue = Queue(f"e2e-{self.source}-{uuid.uuid4().hex[:8]}", exchange, routing_key=self.routing_key,
                          exclusive=True)

            def keep(body, message):
                envelopes = body["events"] if self.batches else [body]
                at = time.time()
                self.arrived.extend(at for _ in envelopes)
                self.events.extend(envelopes)
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


def new_ticket(**overrides):
    body = {"subject": "VPN drops every few minutes", "description": "Since the update the VPN disconnects.",
            "requester": {"email": f"user-{uuid.uuid4().hex[:6]}@example.com", "name": "Ann Example"},
            "priority": "normal"}
    body.update(overrides)
    return body


def kb_elasticsearch_env(es_url):
    """Settings that put kb_search on the Elasticsearch backend at ``es_url``, with aliases of its own (so
    stacks sharing one Elasticsearch never see each other's articles). Pass as ``Stack(..., env=...)``."""
    return {"HELPDESK_KB_SEARCH_BACKEND": "elasticsearch", "HELPDESK_KB_ES_URL": es_url,
            "HELPDESK_KB_ES_PREFIX": f"kbe2e{uuid.uuid4().hex[:8]}"}
