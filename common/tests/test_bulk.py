"""Bulk inserts write exactly what a Core insert writes, on SQLite and on PostgreSQL."""
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from helpdesk_common.bulk import allocate_ids, insert_rows
from helpdesk_common.adapters.database import engine_for
from helpdesk_common.database import UtcDateTime
from helpdesk_common.testing import scratch_postgres_database


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "bulk_rows"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    name: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSON)
    at: Mapped[object] = mapped_column(UtcDateTime)
    flag: Mapped[bool] = mapped_column(Boolean)
    attempts: Mapped[int] = mapped_column(Integer, default=7)  # a Python-side default the rows leave out


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sessions(request, tmp_path):
    with ExitStack() as stack:
        url = (f"sqlite:///{tmp_path / 'bulk.db'}" if request.param == "sqlite"
               else stack.enter_context(scratch_postgres_database("bulk_test")))
        Base.metadata.create_all(engine_for(url))
        yield sessionmaker(engine_for(url), expire_on_commit=False)


def read(sessions):
    with sessions() as session:
        return [(r.id, r.name, r.payload, r.at, r.flag, r.attempts) for r in session.scalars(select(Row).order_by(Row.id))]


def test_rows_arrive_as_given_with_ids_drawn_first_and_defaults_applied(sessions):
    at = datetime(2026, 11, 22, 18, 30, 1, 123456, tzinfo=timezone(timedelta(hours=2)))
    given = [{"name": f"row ’{n}' \"quoted\"", "payload": {"n": n, "nested": {"list": [1, "två", None]}},
              "at": at + timedelta(seconds=n), "flag": n % 2 == 0} for n in range(5)]
    with sessions.begin() as session:
        ids = allocate_ids(session, Row.__table__, len(given))
        insert_rows(session, Row.__table__, [{"id": i, **row} for i, row in zip(ids, given)])
    assert ids == sorted(ids) and len(set(ids)) == 5
    with sessions.begin() as session:  # more ids after those: never one already taken
        more = allocate_ids(session, Row.__table__, 2)
        insert_rows(session, Row.__table__, [{**given[0], "id": i, "name": "later"} for i in more])
        insert_rows(session, Row.__table__, [])
    assert min(more) > max(ids)
    rows = read(sessions)
    assert [r[0] for r in rows] == ids + more
    assert [(name, payload, at, flag, attempts) for _, name, payload, at, flag, attempts in rows[:5]] == [
        (row["name"], row["payload"], row["at"].astimezone(timezone.utc), row["flag"], 7) for row in given]


def test_rows_without_ids_are_numbered_in_their_order(sessions):
    with sessions.begin() as session:
        insert_rows(session, Row.__table__, [{"name": f"n{n:03d}", "payload": {}, "at": datetime.now(timezone.utc),
                                              "flag": True} for n in range(150)])
    names = [name for _, name, *_ in read(sessions)]
    assert names == [f"n{n:03d}" for n in range(150)]


def test_a_naive_datetime_or_uneven_rows_are_refused_and_nothing_written(sessions):
    with pytest.raises((ValueError, StatementError)):  # SQLAlchemy wraps the type's ValueError on SQLite
        with sessions.begin() as session:
            insert_rows(session, Row.__table__, [{"id": 1, "name": "a", "payload": {}, "at": datetime.now(timezone.utc),
                                                  "flag": True},
                                                 {"id": 2, "name": "b", "payload": {}, "at": datetime.now(),
                                                  "flag": True}])
    if sessions.kw["bind"].dialect.name == "postgresql":  # SQLite's executemany checks keys its own way
        with pytest.raises(ValueError):
            with sessions.begin() as session:
                insert_rows(session, Row.__table__, [{"id": 1, "name": "a"}, {"name": "b", "id": 2}])
    assert read(sessions) == []
