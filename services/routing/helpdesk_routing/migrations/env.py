"""Alembic environment of the routing service; the URL comes from ``helpdesk_routing.migrate``."""
from helpdesk_common.adapters.migrations import run_migrations
from helpdesk_routing.models import Base

run_migrations(Base.metadata)
