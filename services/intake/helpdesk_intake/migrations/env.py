"""Alembic environment of the intake service; the URL comes from ``helpdesk_intake.migrate``."""
from helpdesk_common.adapters.migrations import run_migrations
from helpdesk_intake.models import Base

run_migrations(Base.metadata)
