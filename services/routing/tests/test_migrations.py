"""The Alembic migrations build exactly the schema the models declare."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from helpdesk_common.adapters.database import engine_for
from helpdesk_routing.models import Base


def test_migrated_schema_matches_the_models(db_url):
    with engine_for(db_url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
