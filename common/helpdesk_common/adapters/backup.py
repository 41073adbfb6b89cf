"""Back up and restore every service's database: ``helpdesk-backup backup DIR`` / ``restore DIR``.

Each service owns its database (``HELPDESK_<NAME>_DB_URL``, the same variables the services read), so a
backup is one file per database in ``DIR``, with ``manifest.json`` naming them:

- **SQLite** through SQLite's online backup API (``sqlite3.Connection.backup``): a consistent copy taken
  while the services write (it reads one snapshot; the WAL is taken into account), restored the same way
  into the database file, so a stale ``-wal`` beside it is never replayed over the restored pages.
- **PostgreSQL** with ``pg_dump --format=custom`` (one consistent snapshot of that database) and
  ``pg_restore --clean --if-exists --single-transaction``. Before it replaces a database, ``restore``
  reads each sequence's value and afterwards sets it back to the higher of that and the restored one: the
  ids handed out after the backup (ticket numbers are made from the tickets' id) are never handed out
  again, so a number a customer or an integrator saw keeps meaning one ticket.

Not in the backup: the search index (``kb-reindex`` rebuilds it from the kb database: the embedded one
under ``HELPDESK_KB_INDEX_DIR``, or Elasticsearch's aliases) and the broker (the outboxes keep every
event until the broker confirmed it; what was in flight is delivered again and consumers drop repeats by
event id). ``--attachments DIR`` copies intake's attachment files too (``HELPDESK_ATTACHMENTS_DIR``).

Restore with the services stopped, then start them: see deploy/README.md ("Backups").
"""
import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone

from sqlalchemy.engine import make_url

DATABASES = {
    "tickets": ("HELPDESK_TICKETS_DB_URL", "sqlite:///var/tickets.db"),
    "gateway": ("HELPDESK_GATEWAY_DB_URL", "sqlite:///var/gateway.db"),
    "intake": ("HELPDESK_INTAKE_DB_URL", "sqlite:///var/intake.db"),
    "routing": ("HELPDESK_ROUTING_DB_URL", "sqlite:///var/routing.db"),
    "kb": ("HELPDESK_KB_DB_URL", "sqlite:///var/kb.db"),
    "surveys": ("HELPDESK_SURVEYS_DB_URL", "sqlite:///var/surveys.db"),
    "analytics": ("HELPDESK_ANALYTICS_DB_URL", "sqlite:///var/analytics.db"),
}
"""Every service's database: its name in a backup, the variable with its URL, the local default."""

MANIFEST = "manifest.json"


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why."""


def configured_urls(environ=os.environ, only=None):
    """{name: url} of the databases to handle (``only``: some names)."""
    names = only or list(DATABASES)
    unknown = sorted(set(names) - set(DATABASES))
    if unknown:
        raise BackupError(f"unknown database(s) {', '.join(unknown)}; known: {', '.join(DATABASES)}")
    return {name: environ.get(DATABASES[name][0]) or DATABASES[name][1] for name in names}


def _kind(url):
    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"cannot back up a {backend} database")
    return backend


def _sqlite_path(url):
    path = make_url(url).database
    if not path or path == ":memory:":
        raise BackupError(f"{url} is not a SQLite file")
    return path


def _libpq(url):
    """The URL as pg_dump reads it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _redacted(url):
    return make_url(url).render_as_string(hide_password=True)


def backup(directory, urls):
    """Write a backup of every database in ``urls`` to ``directory`` (created; must not hold a backup)."""
    os.makedirs(directory, exist_ok=True)
    if os.path.exists(os.path.join(directory, MANIFEST)):
        raise BackupError(f"{directory} already holds a backup")
    manifest = {"created_at": datetime.now(timezone.utc).isoformat(), "databases": {}}
    for name, url in urls.items():
        kind = _kind(url)
        if kind == "sqlite":
            source_path = _sqlite_path(url)
            if not os.path.exists(source_path):
                raise BackupError(f"the {name} database {source_path} does not exist")
            file = f"{name}.sqlite"
            source = sqlite3.connect(source_path)
            target = sqlite3.connect(os.path.join(directory, file))
            try:
                source.backup(target)  # one pass, one read snapshot: consistent while others write
            finally:
                target.close()
                source.close()
        else:
            file = f"{name}.pgdump"
            _run(["pg_dump", "--format=custom", "--no-owner", "--file", os.path.join(directory, file), _libpq(url)])
        manifest["databases"][name] = {"kind": kind, "file": file, "url": _redacted(url)}
    with open(os.path.join(directory, MANIFEST), "w") as stream:
        json.dump(manifest, stream, indent=2)
    return manifest


def restore(directory, urls):
    """Restore the databases of the backup in ``directory`` over those at ``urls`` (services stopped)."""
    try:
        with open(os.path.join(directory, MANIFEST)) as stream:
            manifest = json.load(stream)
    except FileNotFoundError:
        raise BackupError(f"{directory} holds no backup ({MANIFEST} is missing)") from None
    missing = sorted(set(urls) - set(manifest["databases"]))
    if missing:
        raise BackupError(f"the backup has no {', '.join(missing)} database")
    for name, url in urls.items():
        entry = manifest["databases"][name]
        if entry["kind"] != _kind(url):
            raise BackupError(f"the backup's {name} database is {entry['kind']}, the target {_kind(url)}")
        path = os.path.join(directory, entry["file"])
        if entry["kind"] == "sqlite":
            target_path = _sqlite_path(url)
            os.makedirs(os.path.dirname(os.path.abspath(target_path)), exist_ok=True)
            source, target = sqlite3.connect(path), sqlite3.connect(target_path)
            try:
                source.backup(target)  # page by page through SQLite: the target's WAL is reset, not replayed
            finally:
                target.close()
                source.close()
        else:
            before = _sequences(url)
            _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                  "--dbname", _libpq(url), path])
            _carry_sequences_over(url, before)
    return manifest


def _pg(url):
    import psycopg2  # the postgres extra: only PostgreSQL restores need it

    connection = psycopg2.connect(_libpq(url))
    connection.autocommit = True
    return connection


def _sequences(url):
    connection = _pg(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT schemaname, sequencename, last_value FROM pg_sequences")
            return {(schema, name): value for schema, name, value in cursor.fetchall() if value is not None}
    finally:
        connection.close()


def _carry_sequences_over(url, before):
    """Set every sequence to at least its value before the restore: no id (ticket number) is reused."""
    connection = _pg(url)
    try:
        with connection.cursor() as cursor:
            for (schema, name), value in before.items():
                cursor.execute("SELECT last_value FROM pg_sequences WHERE schemaname = %s AND sequencename = %s",
                               (schema, name))
                restored = cursor.fetchone()
                if restored is None or (restored[0] is not None and restored[0] >= value):
                    continue  # gone with the restore, or already past the old value
                cursor.execute("SELECT setval(format('%%I.%%I', %s::text, %s::text), %s)", (schema, name, value))
    finally:
        connection.close()


def copy_tree(source, target):
    if os.path.isdir(source):
        shutil.copytree(source, target, dirs_exist_ok=True)


def _run(argv):
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{argv[0]} failed: {result.stderr.strip()}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="helpdesk-backup", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("backup", "restore"))
    parser.add_argument("directory", help="where the backup is written / read")
    parser.add_argument("--only", help=f"comma-separated databases (default: all: {','.join(DATABASES)})")
    parser.add_argument("--attachments", metavar="DIR",
                        help="intake's attachments directory, copied into (or back from) the backup")
    args = parser.parse_args(argv)
    try:
        urls = configured_urls(only=args.only.split(",") if args.only else None)
        if args.action == "backup":
            manifest = backup(args.directory, urls)
            if args.attachments:
                copy_tree(args.attachments, os.path.join(args.directory, "attachments"))
        else:
            manifest = restore(args.directory, urls)
            if args.attachments:
                copy_tree(os.path.join(args.directory, "attachments"), args.attachments)
    except BackupError as error:
        print(f"helpdesk-backup: {error}", file=sys.stderr)
        return 2
    done = "backed up" if args.action == "backup" else "restored"
    print(f"{done} {', '.join(urls)} ({manifest['created_at']}); rebuild the search index with kb-reindex"
          if args.action == "restore" else f"{done} {', '.join(urls)} to {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
