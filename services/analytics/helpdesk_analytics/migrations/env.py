"""Alembic environment of the analytics service; the URL comes from ``helpdesk_analytics.migrate``."""
from helpdesk_common.adapters.migrations import run_migrations
from helpdesk_analytics.models import Base

run_migrations(Base.metadata)
