"""Reliable publishing: the state change and its event are written in one transaction, then relayed.

A service declares its outbox table with :class:`OutboxMixin`, calls :func:`stage` inside the
transaction that changes its state, and declares an :class:`~helpdesk_common.adapters.relay.OutboxRelay`
dependency. The relay runs in the service process, is woken by the commit of every transaction that staged rows (so events leave
within milliseconds) and polls as a fallback (so rows left by a process that died are sent by the next
one). It publishes with publisher confirms and marks a row sent only after the broker confirmed it: a
crash in between resends the event, which consumers deduplicate by its ``id``. Nothing committed is lost.
"""
from sqlalchemy import JSON, BigInteger, Integer, String, Text, delete, func, select
from sqlalchemy import Connection as DatabaseConnection
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from .bulk import insert_rows
from .database import UtcDateTime, utcnow


class OutboxMixin:
    """Columns of a service's outbox table. Declare ``class Outbox(OutboxMixin, Base)`` in models.py."""

    __tablename__ = "outbox"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(100))
    envelope: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[object] = mapped_column(UtcDateTime, default=utcnow)
    published_at: Mapped[object] = mapped_column(UtcDateTime, nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, nullable=True)


def stage(session, outbox_model, envelope, wake=True):
    """Add ``envelope`` to the outbox in the caller's transaction; it is published after commit.

    ``session``: an ORM session, or a Core connection with ``wake=False`` (see :func:`stage_many`)."""
    stage_many(session, outbox_model, [envelope], wake=wake)


def stage_many(session, outbox_model, envelopes, wake=True):
    """Add several envelopes in one statement (executemany), in the caller's transaction.

    ``wake=False``: the commit does not wake the relays; the caller calls :func:`wake_relays` once after a
    series of small transactions, so that their events leave in one batch instead of one by one (the
    relays' poll sends them anyway should the caller die first). Only a session can wake at commit: a
    Core connection (cheaper, for a transaction per item) must pass ``wake=False``."""
    if envelopes:
        if wake and isinstance(session, DatabaseConnection):
            raise TypeError("a Core connection cannot wake the relays at commit: stage with wake=False, "
                            "then call wake_relays")
        if wake:  # the relays of this table are woken the moment the transaction commits (_wake_relays)
            session.info.setdefault(_STAGED, set()).add(outbox_model.__table__)
        now = utcnow()
        # one statement for all, without the ORM's bookkeeping (see helpdesk_common.bulk)
        insert_rows(session, outbox_model.__table__, [
            {"event_id": envelope["id"], "event_type": envelope["type"], "envelope": envelope, "created_at": now,
             "attempts": 0} for envelope in envelopes])


# Wake on commit. A relay used to be woken by ``worker_result``, which nameko calls only after the
# entrypoint's result was handled: after an RPC reply was published and confirmed, after every other
# worker of a group-commit batch was resumed. Under load that put tens of milliseconds between the
# commit and the relay's first look; and every worker woke it, also the many that staged nothing (each
# wake an empty query: in routing, a third of the process's CPU went to the relay). Now the session that
# staged rows wakes its relays as it commits. Rows written without ``stage`` wait for the poll.
_STAGED = "helpdesk_outbox_staged"  # session.info key: the outbox tables this transaction wrote to
_RELAYS = {}  # outbox table -> the relays running in this process for it


@event.listens_for(Session, "after_commit")
def _wake_relays(session):
    for table in session.info.pop(_STAGED, ()):
        for relay in list(_RELAYS.get(table, ())):
            relay.wake()


def register_relay(outbox_model, relay):
    """``relay`` (anything with a ``wake()``) is woken when a transaction that staged rows in
    ``outbox_model`` commits, until :func:`unregister_relay`."""
    _RELAYS.setdefault(outbox_model.__table__, set()).add(relay)


def unregister_relay(outbox_model, relay):
    _RELAYS.get(outbox_model.__table__, set()).discard(relay)


def wake_relays(outbox_model):
    """Wake this process's relays of ``outbox_model`` (after commits staged with ``wake=False``)."""
    for relay in list(_RELAYS.get(outbox_model.__table__, ())):
        relay.wake()


@event.listens_for(Session, "after_rollback")
def _forget_staged(session):
    session.info.pop(_STAGED, None)  # nothing of it was committed


def pending_count(session, outbox_model):
    """How many events wait to be relayed (for health checks)."""
    return session.scalar(select(func.count()).select_from(outbox_model).where(
        outbox_model.published_at.is_(None)))


def forget_published(session, outbox_model):
    """Delete the rows already relayed (a relay keeps them a while after publishing, ``OutboxRelay.retention``),
    in the caller's transaction: an erasure of personal data removes the copies its events carried. Rows
    not yet published stay: they still have to go out. Answers how many went."""
    return session.execute(delete(outbox_model).where(outbox_model.published_at.is_not(None))).rowcount
