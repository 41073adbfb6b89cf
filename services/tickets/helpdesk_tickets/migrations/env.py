"""Alembic environment of the tickets service; the URL comes from ``helpdesk_tickets.migrate``."""
from helpdesk_common.adapters.migrations import run_migrations
from helpdesk_tickets.models import Base

run_migrations(Base.metadata)
