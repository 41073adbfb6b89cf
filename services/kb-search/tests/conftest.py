"""Fixtures of the kb-search tests: a migrated SQLite database, the Elasticsearch emulator, both backends.

The Elasticsearch tests run against ``noida-db`` (pinned in constraints.txt), an Elasticsearch 8 REST API
emulator started here on a free loopback port and stopped at the end. Production runs a real
Elasticsearch; where the emulator differs from it, the test says so and is marked ``es_emulator_gap``.
"""
import uuid

import pytest

from helpdesk_common.testing import wait_for
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


@pytest.fixture
def db_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    upgrade(url)
    return url


@pytest.fixture
def sessions(db_url):
    from sqlalchemy.orm import sessionmaker

    from helpdesk_common.adapters.database import engine_for

    return sessionmaker(engine_for(db_url), expire_on_commit=False)


@pytest.fixture(name="wait_for")
def wait_for_fixture():
    return wait_for
