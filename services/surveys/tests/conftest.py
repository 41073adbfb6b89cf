"""Shared fixtures of the surveys tests: a migrated database per test, on SQLite and on PostgreSQL."""

from helpdesk_common.testing import database_fixtures
from helpdesk_surveys.migrate import upgrade


# db_url: a migrated database of its own for each test, on SQLite and on PostgreSQL; sessions: on it.
db_url, sessions = database_fixtures("surveys", upgrade)
