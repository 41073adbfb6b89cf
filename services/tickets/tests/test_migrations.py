"""The Alembic migrations create exactly the tables the models describe, on SQLite and PostgreSQL."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from helpdesk_common.adapters.database import engine_for
from helpdesk_common.testing import scratch_postgres_database
from helpdesk_tickets import migrate
from helpdesk_tickets.models import Base

TABLES = {"alembic_version", "canned_replies", "contact_identifiers", "contacts", "custom_field_definitions",
          "idempotency_keys",
          "message_idempotency_keys", "messages", "notifications", "organisation_domains", "organisations",
          "outbox", "processed_events", "sla_clocks", "ticket_followers", "ticket_history", "ticket_links", "ticket_presence",
          "tickets"}


def _drift(url):
    with engine_for(url).connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def test_sqlite_schema_matches_the_models(db_url):
    assert set(inspect(engine_for(db_url)).get_table_names()) == TABLES
    assert _drift(db_url) == []


def test_upgrade_is_repeatable_and_the_command_line_works(db_url, capsys):
    migrate.main(["--url", db_url])  # already at head: nothing to do, no error
    assert "up to date" in capsys.readouterr().out
    assert _drift(db_url) == []


@pytest.mark.postgres
def test_postgresql_schema_matches_the_models():
    with scratch_postgres_database("tickets_test") as url:
        migrate.upgrade(url)
        assert set(inspect(engine_for(url)).get_table_names()) == TABLES
        assert _drift(url) == []
