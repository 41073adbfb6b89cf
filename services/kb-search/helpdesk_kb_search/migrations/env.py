"""Alembic environment of the kb_search service; the URL comes from ``helpdesk_kb_search.migrate``."""
from helpdesk_common.adapters.migrations import run_migrations
from helpdesk_kb_search.models import Base

run_migrations(Base.metadata)
