"""``routing-migrate``: bring the routing database to the latest schema (Alembic)."""
import os

from helpdesk_common.adapters.migrations import Migrations

MIGRATIONS = Migrations("routing", os.path.dirname(os.path.abspath(__file__)), "ROUTING_DB_URL")
alembic_config, upgrade, main = MIGRATIONS.alembic_config, MIGRATIONS.upgrade, MIGRATIONS.main
