"""Alembic environment of the intake service; the URL comes from ``intake.migrate``."""
from helpdesk_common.migrations import run_migrations
from intake.models import Base

run_migrations(Base.metadata)
