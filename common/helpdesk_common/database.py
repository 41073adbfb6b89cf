"""What every service's tables and transactions share: the one clock, UTC timestamps, and rerunning a
transaction that lost a race. Pure: engines and the nameko provider are in
:mod:`helpdesk_common.adapters.database`.
"""
import random
import time
from datetime import datetime, timezone

from sqlalchemy import DateTime
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.types import TypeDecorator


def utcnow():
    """The current time, UTC, aware: the one clock every table uses."""
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator):
    """A timestamp stored as UTC and always read back as an aware datetime (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given where UTC was expected")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


RETRYABLE_PG_CODES = ("40001", "40P01")  # serialization failure, deadlock detected


def is_retryable(error):
    """A transaction that failed only because a concurrent one got there first, and may simply be rerun:
    a unique key taken meanwhile, a deadlock, a serialization failure, SQLite busy beyond its timeout."""
    if isinstance(error, IntegrityError):
        return True
    if isinstance(error, OperationalError):
        code = getattr(getattr(error, "orig", None), "pgcode", None)
        return code in RETRYABLE_PG_CODES or "database is locked" in str(error)
    return False


def run_in_transaction(sessions, change, attempts=3):
    """Run ``change(session)`` in one transaction; rerun it when it lost a race with a concurrent one.

    The rerun sees what the other transaction committed (the contact it created, the idempotency key it
    recorded), so it takes the path that agrees with it.
    """
    for attempt in range(1, attempts + 1):
        try:
            with sessions.begin() as session:
                return change(session)
        except DBAPIError as error:
            if attempt == attempts or not is_retryable(error):
                raise
            time.sleep(random.uniform(0.001, 0.01) * attempt)  # green under eventlet; spreads the rerun
