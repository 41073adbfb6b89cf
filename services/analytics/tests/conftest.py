"""Shared fixtures of the analytics tests: a migrated database per test, the history's settings."""
import os
import sys

import pytest

from helpdesk_analytics import settings as analytics_settings
from helpdesk_analytics.migrate import upgrade
from helpdesk_common.testing import database_fixtures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the tests' helper modules (analytics_*)

from analytics_history import CALENDARS, STATUSES  # noqa: E402


# db_url: a migrated database of its own for each test, on SQLite and on PostgreSQL; sessions: on it.
db_url, sessions = database_fixtures("analytics", upgrade)


@pytest.fixture
def settings():
    """Status categories and calendars of the synthetic history (a holiday, Amsterdam office hours)."""
    return analytics_settings.from_dict(STATUSES, CALENDARS)
