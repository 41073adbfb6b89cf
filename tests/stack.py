"""Start the platform as real processes on loopback, for end-to-end tests and benchmarks.

Each stack gets its own RabbitMQ virtual host (so it never shares queues with a developer's
``make run`` or another test run) and its own databases; it starts the services and the gateway as
separate processes, exactly as ``make run`` does, waits for ``/health`` and stops them all.
"""
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
AMQP = os.environ.get("HELPDESK_TEST_AMQP", "pyamqp://guest:guest@127.0.0.1:5672/")
RABBIT_API = os.environ.get("HELPDESK_TEST_RABBIT_API", "http://guest:guest@127.0.0.1:15672")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Poll ``predicate`` until it returns something truthy; fail clearly after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Vhost:
    """A throwaway RabbitMQ virtual host, created and deleted through the management API."""

    def __init__(self, name=None):
        self.name = name or f"helpdesk-test-{uuid.uuid4().hex[:10]}"
        parts = urllib.parse.urlsplit(RABBIT_API)
        self.api = f"{parts.scheme}://{parts.hostname}:{parts.port}/api"
        self.auth = (parts.username, parts.password)
        self.quoted = urllib.parse.quote(self.name, safe="")

    def create(self):
        requests.put(f"{self.api}/vhosts/{self.quoted}", auth=self.auth, timeout=10).raise_for_status()
        requests.put(f"{self.api}/permissions/{self.quoted}/{self.auth[0]}", auth=self.auth, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        return self

    def delete(self):
        requests.delete(f"{self.api}/vhosts/{self.quoted}", auth=self.auth, timeout=10)

    @property
    def amqp_uri(self):
        return AMQP.rstrip("/") + "/" + self.quoted


class Stack:
    """The tickets service (one or more replicas) and the gateway, as processes.

    :param workdir: where SQLite files and logs go.
    :param tickets_db_url: the tickets database (default: a SQLite file in ``workdir``).
    """

    def __init__(self, workdir, tickets_db_url=None, gateway_workers=1, gateway_threads=16, env=None):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.vhost = Vhost()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = "hd_test_" + secrets.token_urlsafe(16)
        self.tickets_db_url = tickets_db_url or f"sqlite:///{self.workdir}/tickets.db"
        self.gateway_db_url = f"sqlite:///{self.workdir}/gateway.db"
        self.gateway_workers = gateway_workers
        self.gateway_threads = gateway_threads
        self.extra_env = env or {}
        self.tickets = []
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
            "HELPDESK_BOOTSTRAP_TOKEN": self.token,
            "HELPDESK_PORT": str(self.port),
            "HELPDESK_GATEWAY_WORKERS": str(self.gateway_workers),
            "HELPDESK_GATEWAY_THREADS": str(self.gateway_threads),
            "PROMETHEUS_MULTIPROC_DIR": os.path.join(self.workdir, "prometheus"),
            "HELPDESK_RPC_TIMEOUT": "5",
        })
        env.update(self.extra_env)
        env.update({key: str(value) for key, value in extra.items()})
        return env

    def _spawn(self, name, argv, env):
        log = open(os.path.join(self.workdir, f"{name}.log"), "ab")
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def migrate(self):
        env = self.env()
        subprocess.run([os.path.join(BIN, "tickets-migrate"), "--url", self.tickets_db_url], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        subprocess.run([os.path.join(BIN, "helpdesk"), "migrate"], cwd=ROOT, env=env, check=True,
                       capture_output=True)

    def start_tickets(self, **env):
        """Start one more tickets replica; returns its process."""
        process = self._spawn(f"tickets-{len(self.tickets)}",
                              [os.path.join(BIN, "nameko"), "run", "tickets.service", "--config",
                               "services/tickets/config.yaml"], self.env(**env))
        self.tickets.append(process)
        return process

    def start_gateway(self):
        self.gateway = self._spawn("gateway", [os.path.join(BIN, "gunicorn"), "-c", "gateway/gunicorn.conf.py",
                                               "helpdesk_gateway.app:create_app()"], self.env())

    def start(self, tickets_replicas=1):
        self.vhost.create()
        self.migrate()
        for _ in range(tickets_replicas):
            self.start_tickets()
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

    def stop(self):
        for process in [self.gateway, *self.tickets]:
            if process is not None:
                self.stop_process(process)
        self.vhost.delete()

    def log(self, name):
        with open(os.path.join(self.workdir, f"{name}.log"), errors="replace") as stream:
            return stream.read()
