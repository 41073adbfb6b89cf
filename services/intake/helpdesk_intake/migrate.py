"""``intake-migrate``: bring the intake database to the latest schema (Alembic)."""
import os

from helpdesk_common.adapters.migrations import Migrations

MIGRATIONS = Migrations("intake", os.path.dirname(os.path.abspath(__file__)), "INTAKE_DB_URL")
alembic_config, upgrade, main = MIGRATIONS.alembic_config, MIGRATIONS.upgrade, MIGRATIONS.main
