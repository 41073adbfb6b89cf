"""Shared fixtures of the analytics tests: a migrated database per test, the history's settings."""
import os
import sys

import pytest
from sqlalchemy.orm import sessionmaker

from helpdesk_analytics import settings as analytics_settings
from helpdesk_analytics.migrate import upgrade
from helpdesk_common.adapters.database import engine_for

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the tests' helper modules (analytics_*)

from analytics_history import CALENDARS, STATUSES  # noqa: E402


@pytest.fixture
def db_url(tmp_path):
    """A fresh SQLite file, migrated to the latest schema with the service's own migrations."""
    url = f"sqlite:///{tmp_path / 'analytics.db'}"
    upgrade(url)
    yield url
    engine_for(url).dispose()


@pytest.fixture
def sessions(db_url):
    return sessionmaker(engine_for(db_url), expire_on_commit=False)


@pytest.fixture
def settings():
    """Status categories and calendars of the synthetic history (a holiday, Amsterdam office hours)."""
    return analytics_settings.from_dict(STATUSES, CALENDARS)
