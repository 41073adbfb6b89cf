"""Shared fixtures of the gateway's own tests: a migrated SQLite file per test, a port nothing listens
on, a deadline-bound wait, and the gateway app built on them.

The root conftest.py has applied eventlet's monkey-patch already, so ``threading`` here is green.
"""
import socket
import time

import pytest
from sqlalchemy.orm import sessionmaker

from helpdesk_common.adapters.database import engine_for
from helpdesk_gateway.cli import upgrade


def wait_until(condition, timeout=5.0, message="condition"):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(0.005)


@pytest.fixture(name="wait_until")
def wait_until_fixture():
    return wait_until


@pytest.fixture
def db_url(tmp_path):
    """A fresh SQLite file migrated with the gateway's own migrations (``helpdesk migrate``)."""
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade(url)
    yield url
    engine_for(url).dispose()


@pytest.fixture
def sessions(db_url):
    return sessionmaker(engine_for(db_url), expire_on_commit=False)


@pytest.fixture
def unused_port():
    """A loopback port nothing listens on (bound, then released), so connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dead_amqp_uri(unused_port):
    return f"pyamqp://guest:guest@127.0.0.1:{unused_port}/"
