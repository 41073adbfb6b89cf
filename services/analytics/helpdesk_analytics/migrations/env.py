"""Alembic environment of the analytics service; the URL comes from ``helpdesk_analytics.migrate``."""
from helpdesk_common.adapters.migrations import run_migrations
from helpdesk_analytics.models import Base
import helpdesk_analytics.surge_models  # noqa: F401,E402 - its tables are in Base too

run_migrations(Base.metadata)
