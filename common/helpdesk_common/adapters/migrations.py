"""One way to migrate a service's database with Alembic: the ``<service>-migrate`` commands and every
service's ``migrations/env.py`` are built from this module."""
import argparse
import os

from alembic import command
from alembic.config import Config as AlembicConfig

from .config import load_config
from .database import engine_for


class Migrations:
    """The migrations of one service.

    :param name: the service's short name (``tickets``, ``kb``); names the ``HELPDESK_<NAME>_CONFIG``
        variable that can point at another config file.
    :param package_dir: the service's package folder, holding ``migrations/`` (its parent holds
        ``config.yaml``).
    :param config_key: the config entry with the database URL (``TICKETS_DB_URL``).
    """

    def __init__(self, name, package_dir, config_key):
        self.name = name
        self.script_location = os.path.join(package_dir, "migrations")
        self.default_config = os.path.join(os.path.dirname(package_dir), "config.yaml")
        self.config_key = config_key

    def alembic_config(self, url):
        config = AlembicConfig()
        config.set_main_option("script_location", self.script_location)
        config.attributes["url"] = url
        return config

    def upgrade(self, url, revision="head"):
        """Apply migrations to the database at ``url``."""
        engine_for(url)  # creates the folder of a SQLite file
        command.upgrade(self.alembic_config(url), revision)

    def main(self, argv=None):
        """The ``<service>-migrate`` command."""
        parser = argparse.ArgumentParser(description=f"Bring the {self.name} database to the latest schema.")
        parser.add_argument("--config", default=os.environ.get(f"HELPDESK_{self.name.upper()}_CONFIG",
                                                               self.default_config),
                            help=f"the service's nameko config file (for {self.config_key})")
        parser.add_argument("--url", help="database URL (overrides the config)")
        args = parser.parse_args(argv)
        url = args.url or load_config(args.config)[self.config_key]
        self.upgrade(url)
        print(f"{self.name} database is up to date ({url.split('@')[-1]})")


def run_migrations(metadata):
    """The body of a service's ``migrations/env.py``: migrate the URL ``Migrations`` passed in."""
    from alembic import context

    engine = engine_for(context.config.attributes["url"])
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
