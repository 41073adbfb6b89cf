"""Consuming at least once, effects once: a handler records the event ids it processed in the same
transaction as its effect, and skips repeats. Declare the table with
``class ProcessedEvent(ProcessedEventMixin, Base)``; the nameko handlers that deliver the events, retry and
park them are in :mod:`helpdesk_common.adapters.consumer`.
"""
from sqlalchemy import String, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from .database import UtcDateTime, utcnow


class ProcessedEventMixin:
    """Which (event, handler) pairs took effect. The primary key makes a concurrent repeat fail."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handler: Mapped[str] = mapped_column(String(200), primary_key=True)
    processed_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)


def first_delivery(session, processed_model, event_id, handler):
    """True the first time ``handler`` sees ``event_id``; records it in the caller's transaction.

    Two replicas handling the same event at once both get True, but only one can commit: the other
    fails on the primary key, its transaction rolls back, and the redelivery then answers False.
    """
    if session.get(processed_model, (event_id, handler)) is not None:
        return False
    session.add(processed_model(event_id=event_id, handler=handler, processed_at=utcnow()))
    return True


def first_deliveries(session, processed_model, event_ids, handler):
    """The batch form of :func:`first_delivery`: which of ``event_ids`` ``handler`` sees for the first
    time (a set), all recorded in the caller's transaction with one query and one insert. A concurrent
    repeat fails on the primary key as with :func:`first_delivery`; rerun the transaction."""
    wanted = list(dict.fromkeys(event_ids))
    if not wanted:
        return set()
    done = set(session.scalars(select(processed_model.event_id).where(processed_model.event_id.in_(wanted),
                                                                       processed_model.handler == handler)))
    fresh = [event_id for event_id in wanted if event_id not in done]
    if fresh:
        now = utcnow()
        session.execute(insert(processed_model.__table__),
                        [{"event_id": event_id, "handler": handler, "processed_at": now} for event_id in fresh])
    return set(fresh)
