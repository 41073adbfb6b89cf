"""Alembic environment of the routing service; the URL comes from ``routing.migrate``."""
from helpdesk_common.migrations import run_migrations
from routing.models import Base

run_migrations(Base.metadata)
