"""Shared fixtures of the gateway's own tests: a migrated database per test (SQLite and PostgreSQL), a port
nothing listens on, a deadline-bound wait, and the gateway app built on them.

The root conftest.py has applied eventlet's monkey-patch already, so ``threading`` here is green.
"""
import socket

import pytest

from helpdesk_common.testing import database_fixtures, wait_for
from helpdesk_gateway.cli import upgrade


def wait_until(condition, timeout=5.0, message="condition"):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    return wait_for(condition, timeout=timeout, message=message, interval=0.005)


@pytest.fixture(name="wait_until")
def wait_until_fixture():
    return wait_until


# db_url: a migrated database of its own for each test, on SQLite and on PostgreSQL; sessions: on it.
db_url, sessions = database_fixtures("gateway", upgrade)


@pytest.fixture
def unused_port():
    """A loopback port nothing listens on (bound, then released), so connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dead_amqp_uri(unused_port):
    return f"pyamqp://guest:guest@127.0.0.1:{unused_port}/"
