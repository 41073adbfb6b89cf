"""Consuming reliably: every handler is idempotent, and a failing handler never loses its event.

Delivery is at least once, so a handler records the event id it processed in the same transaction as
its effect (:func:`first_delivery`) and skips repeats. Declare the table with
``class ProcessedEvent(ProcessedEventMixin, Base)``.
"""
from sqlalchemy import String
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
