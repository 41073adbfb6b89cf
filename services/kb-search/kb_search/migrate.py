"""``kb-migrate``: bring the knowledge-base database to the latest schema (Alembic)."""
import argparse
import os

from alembic import command
from alembic.config import Config as AlembicConfig

from helpdesk_common.config import load_config
from helpdesk_common.database import engine_for

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(os.path.dirname(HERE), "config.yaml")


def alembic_config(url):
    config = AlembicConfig()
    config.set_main_option("script_location", os.path.join(HERE, "migrations"))
    config.attributes["url"] = url
    return config


def upgrade(url, revision="head"):
    """Apply migrations to the database at ``url``."""
    engine_for(url)  # creates the folder of a SQLite file
    command.upgrade(alembic_config(url), revision)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=os.environ.get("HELPDESK_KB_CONFIG", DEFAULT_CONFIG),
                        help="the service's nameko config file (for KB_DB_URL)")
    parser.add_argument("--url", help="database URL (overrides the config)")
    args = parser.parse_args(argv)
    url = args.url or load_config(args.config)["KB_DB_URL"]
    upgrade(url)
    print(f"kb database is up to date ({url.split('@')[-1]})")
