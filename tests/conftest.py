"""End-to-end fixtures: the whole platform as processes, on SQLite and on PostgreSQL."""
import os
import sys

import pytest

sys.path.append(os.path.dirname(os.path.abspath(__file__)))

from stack import EventRecorder, stack_fixture  # noqa: E402


platform = stack_fixture("platform")
"""Every process of the platform, started once per test module and database kind."""


@pytest.fixture
def api(platform):
    """An HTTP session with the admin (bootstrap) token."""
    return platform.session()


@pytest.fixture
def events(platform):
    with EventRecorder(platform.amqp_uri) as recorder:
        yield recorder


@pytest.fixture(scope="session")
def es_emulator_url():
    """The Elasticsearch REST API of a ``noida-db`` emulator (pinned) on loopback, for the whole session:
    no real Elasticsearch installs here; production runs the official image."""
    from helpdesk_kb_search.es_emulator import ElasticsearchEmulator

    with ElasticsearchEmulator() as emulator:
        yield emulator.url
