"""Fixtures of the kb-search tests: a migrated database (SQLite and PostgreSQL), the Elasticsearch emulator, both backends.

The Elasticsearch tests run against ``noida-db`` (pinned in constraints.txt), an Elasticsearch 8 REST API
emulator started here on a free loopback port and stopped at the end. Production runs a real
Elasticsearch; where the emulator differs from it, the test says so and is marked ``es_emulator_gap``.
"""
import uuid

import pytest

from helpdesk_common.testing import database_fixtures, wait_for
from helpdesk_kb_search.es_emulator import ElasticsearchEmulator
from helpdesk_kb_search.migrate import upgrade

BACKENDS = ["embedded", "elasticsearch"]


def pytest_configure(config):
    config.addinivalue_line("markers", "es_emulator_gap: real Elasticsearch does this; the emulator does not")


@pytest.fixture(scope="session")
def es_url():
    """An Elasticsearch 8 REST API (the noida-db emulator) on a free loopback port, for this session."""
    with ElasticsearchEmulator() as emulator:
        yield emulator.url


def make_test_backend(kind, request, tmp_path):
    if kind == "embedded":
        from helpdesk_kb_search.backends.embedded import EmbeddedBackend

        backend = EmbeddedBackend(str(tmp_path / "index"))
    else:
        from helpdesk_kb_search.backends.elastic import ElasticsearchBackend

        es_url = request.getfixturevalue("es_url")
        backend = ElasticsearchBackend(es_url, prefix=f"kbt{uuid.uuid4().hex[:8]}", refresh="wait_for")
    backend.ensure_ready()
    return backend


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    backend = make_test_backend(request.param, request, tmp_path)
    yield backend
    if request.param == "elasticsearch":
        backend.drop_all()
    backend.close()


# db_url: a migrated database of its own for each test, on SQLite and on PostgreSQL; sessions: on it.
db_url, sessions = database_fixtures("kb", upgrade)


@pytest.fixture(name="wait_for")
def wait_for_fixture():
    return wait_for
