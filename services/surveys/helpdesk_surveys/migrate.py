"""``surveys-migrate``: bring the surveys database to the latest schema (Alembic)."""
import os

from helpdesk_common.adapters.migrations import Migrations

MIGRATIONS = Migrations("surveys", os.path.dirname(os.path.abspath(__file__)), "SURVEYS_DB_URL")
alembic_config, upgrade, main = MIGRATIONS.alembic_config, MIGRATIONS.upgrade, MIGRATIONS.main
