"""Alembic environment of the kb_search service; the URL comes from ``kb_search.migrate``."""
from helpdesk_common.migrations import run_migrations
from kb_search.models import Base

run_migrations(Base.metadata)
