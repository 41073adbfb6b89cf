"""``analytics-migrate``: bring the analytics database to the latest schema (Alembic)."""
import os

from helpdesk_common.adapters.migrations import Migrations

MIGRATIONS = Migrations("analytics", os.path.dirname(os.path.abspath(__file__)), "ANALYTICS_DB_URL")
alembic_config, upgrade, main = MIGRATIONS.alembic_config, MIGRATIONS.upgrade, MIGRATIONS.main
