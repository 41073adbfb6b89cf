"""``helpdesk-backup``: a backup taken while a writer holds the database, restored over later changes
(SQLite in WAL mode, and a real PostgreSQL scratch database with pg_dump/pg_restore)."""
import json
import sqlite3

import pytest
from sqlalchemy import create_engine, text

from helpdesk_common.adapters import backup
from helpdesk_common.testing import scratch_postgres_database


def engine(url):
    """psycopg2 (the platform's driver) rather than SQLAlchemy 2.1's default psycopg 3."""
    return create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))


def rows(url):
    engine_ = engine(url)
    try:
        with engine_.connect() as connection:
            return [tuple(row) for row in connection.execute(text("SELECT id, subject FROM tickets ORDER BY id"))]
    finally:
        engine_.dispose()


def insert(url, *subjects):
    engine_ = engine(url)
    try:
        with engine_.begin() as connection:
            for subject in subjects:
                connection.execute(text("INSERT INTO tickets (subject) VALUES (:subject)"), {"subject": subject})
    finally:
        engine_.dispose()


def test_sqlite_backup_while_a_writer_is_open_and_restore_over_later_rows(tmp_path):
    path = tmp_path / "tickets.db"
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, subject TEXT)")
    writer.executemany("INSERT INTO tickets (subject) VALUES (?)", [("a",), ("b",)])
    writer.commit()  # in the WAL, not yet checkpointed into the file: the backup must still see it
    url = f"sqlite:///{path}"

    manifest = backup.backup(str(tmp_path / "backup"), {"tickets": url})
    assert manifest["databases"]["tickets"]["kind"] == "sqlite"
    writer.execute("INSERT INTO tickets (subject) VALUES ('c')")
    writer.commit()
    writer.close()
    assert [subject for _, subject in rows(url)] == ["a", "b", "c"]

    backup.restore(str(tmp_path / "backup"), {"tickets": url})
    assert rows(url) == [(1, "a"), (2, "b")]


def test_a_directory_holding_a_backup_is_not_overwritten(tmp_path):
    path = tmp_path / "x.db"
    sqlite3.connect(path).execute("CREATE TABLE t (id INTEGER PRIMARY KEY)").connection.commit()
    backup.backup(str(tmp_path / "b"), {"tickets": f"sqlite:///{path}"})
    with pytest.raises(backup.BackupError, match="already holds a backup"):
        backup.backup(str(tmp_path / "b"), {"tickets": f"sqlite:///{path}"})
    with pytest.raises(backup.BackupError, match="no routing database"):
        backup.restore(str(tmp_path / "b"), {"routing": f"sqlite:///{path}"})


@pytest.mark.postgres
def test_postgres_restore_keeps_ids_handed_out_after_the_backup_from_coming_back(tmp_path):
    with scratch_postgres_database("helpdesk_backup") as url:
        setup = engine(url)
        with setup.begin() as connection:
            connection.execute(text("CREATE TABLE tickets (id SERIAL PRIMARY KEY, subject TEXT)"))
        setup.dispose()
        insert(url, "a", "b")
        manifest = backup.backup(str(tmp_path / "backup"), {"tickets": url})
        assert json.loads((tmp_path / "backup" / "manifest.json").read_text())["databases"]["tickets"]["kind"] \
            == manifest["databases"]["tickets"]["kind"] == "postgresql"
        insert(url, "c", "d")  # ids 3 and 4: seen by someone before the restore

        backup.restore(str(tmp_path / "backup"), {"tickets": url})
        assert rows(url) == [(1, "a"), (2, "b")]
        insert(url, "e")
        assert rows(url)[-1] == (5, "e")  # not 3: an id handed out once is never handed out again
