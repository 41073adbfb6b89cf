"""Alembic environment of the surveys service; the URL comes from ``helpdesk_surveys.migrate``."""
from helpdesk_common.adapters.migrations import run_migrations
from helpdesk_surveys.models import Base

run_migrations(Base.metadata)
