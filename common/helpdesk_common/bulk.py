"""Many rows into one table in one statement, at the database's speed rather than the driver's.

psycopg2 interpolates every parameter into the SQL text on the client, so SQLAlchemy's multi-row
``INSERT ... VALUES (...), (...)`` for 200 rows of 15 columns is a 3,000-literal statement that
Python builds and PostgreSQL parses and plans each time: measured at 13-17 ms for 200 routed tickets,
where the insert itself takes ~3 ms on the server. On PostgreSQL, :func:`insert_rows` sends the rows
as one JSON document and lets the server unpack it (``json_to_recordset``): one literal, a statement
text that never changes, 5-6 ms. SQLite runs in process; there ``executemany`` is already cheap and
is what is used.

The same values reach the table either way: datetimes must be aware (as ``UtcDateTime`` demands) and
are sent as ISO 8601 with their offset; JSON columns keep their nested value; Python-side column
defaults are applied to the keys a row leaves out, as a Core insert would.
"""
import json
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, text

_STATEMENTS = {}  # (table, columns) -> the PostgreSQL statement text (its types compiled once)
_INSERTS = {}  # table -> its Core INSERT (SQLite: executemany)


def _encode(value):
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC was expected")
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be sent in a bulk insert")


def _with_defaults(table, rows):
    keys = list(rows[0])
    missing = [column for column in table.columns
               if column.name not in rows[0] and column.default is not None and not column.default.is_sequence
               and (column.default.is_scalar or column.default.is_callable)]
    if any(list(row) != keys for row in rows):
        raise ValueError("every row of a bulk insert must give the same columns, in the same order")
    if not missing:
        return keys, rows
    filled = []
    for row in rows:
        row = dict(row)
        for column in missing:
            row[column.name] = column.default.arg if column.default.is_scalar else column.default.arg(None)
        filled.append(row)
    return keys + [column.name for column in missing], filled


def dialect_of(executor):
    """The dialect of an ORM session or a Core connection."""
    return executor.dialect if isinstance(executor, Connection) else executor.get_bind().dialect


def _statement(session, table, keys):
    cache_key = (table, tuple(keys))
    statement = _STATEMENTS.get(cache_key)
    if statement is None:
        dialect = dialect_of(session)
        quote = dialect.identifier_preparer.quote
        types = ", ".join(f"{quote(key)} {table.c[key].type.compile(dialect=dialect)}" for key in keys)
        names = ", ".join(quote(key) for key in keys)
        # in the rows' order: serial columns left out draw their values in that order
        statement = text(f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} "
                         f"FROM ROWS FROM (json_to_recordset(CAST(:rows AS json)) AS ({types})) "
                         f"WITH ORDINALITY AS given({names}, position) ORDER BY position")
        _STATEMENTS[cache_key] = statement
    return statement


def insert_rows(session, table, rows):
    """Insert ``rows`` (dicts of column name -> value, the same keys in each) into ``table`` in the
    transaction of ``session`` (an ORM session or a Core connection), in one statement."""
    if not rows:
        return
    if dialect_of(session).name != "postgresql":
        # the statement built once per table, run on the transaction's connection: a batch of a few tickets
        # spent more in building it and in the ORM session's layers than in SQLite's executemany
        statement = _INSERTS.get(table)
        if statement is None:
            statement = _INSERTS[table] = insert(table)
        if isinstance(session, Connection):
            session.execute(statement, rows)
            return
        if session.autoflush:
            session.flush()  # as Session.execute would first: the rows may refer to objects just added
        session.connection().execute(statement, rows)
        return
    keys, rows = _with_defaults(table, rows)
    session.execute(_statement(session, table, keys),
                    {"rows": json.dumps(rows, default=_encode, separators=(",", ":"))})


def allocate_ids(session, table, count):
    """``count`` new values of ``table``'s integer primary key, ascending, taken from the database so
    that replicas never collide: rows inserted with them need no RETURNING (one statement for all).

    PostgreSQL draws them from the column's sequence. SQLite has no sequence: the caller's transaction
    must hold the write lock (``engine_for``'s engines begin IMMEDIATE), so the ids after the largest
    are this transaction's alone; should two writers ever pick the same id anyway, the primary key
    refuses the second transaction, which the caller runs again.
    """
    if not count:
        return []
    (key,) = table.primary_key.columns
    if session.bind.dialect.name == "postgresql":
        return sorted(session.scalars(_NEXTVAL, {"table": table.name, "column": key.name, "n": count}))
    largest = _LARGEST.get(table)
    if largest is None:  # built once per table: a lone ticket's batch spent more building it than running it
        largest = _LARGEST[table] = select(func.coalesce(func.max(key), 0))
    start = (session.scalar(largest) or 0) + 1
    return list(range(start, start + count))


_NEXTVAL = text("SELECT nextval(pg_get_serial_sequence(:table, :column)) FROM generate_series(1, :n)")
_LARGEST = {}  # table -> SELECT max(primary key)
