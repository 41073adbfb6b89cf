"""Alembic environment of the tickets service; the URL comes from ``tickets.migrate``."""
from helpdesk_common.migrations import run_migrations
from tickets.models import Base

run_migrations(Base.metadata)
