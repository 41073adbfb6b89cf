"""Alembic environment of the gateway; the URL comes from ``helpdesk migrate``."""
from helpdesk_common.adapters.migrations import run_migrations
from helpdesk_gateway.models import Base

run_migrations(Base.metadata)
