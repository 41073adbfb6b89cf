"""Alembic environment of the intake service; the URL comes from ``intake.migrate``."""
from alembic import context

from helpdesk_common.database import engine_for
from intake.models import Base

config = context.config


def run_migrations_online():
    engine = engine_for(config.attributes["url"])
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
