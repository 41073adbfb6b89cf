"""The outbox relay: publishes what :func:`helpdesk_common.outbox.stage` wrote, with publisher confirms,
and marks it sent only after the broker confirmed it (see :mod:`helpdesk_common.outbox`).
"""
import json
import logging
import time
import uuid
from contextlib import nullcontext
from datetime import timedelta

import eventlet
from eventlet.event import Event
from kombu import Connection
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Engine, bindparam, delete, select, update
from sqlalchemy.orm import sessionmaker

from ..database import utcnow
from ..failpoints import failpoint
from ..outbox import register_relay, unregister_relay
from .amqp_frames import headers_table, publish_frames
from .database import engine_for
from .exchanges import event_exchanges

log = logging.getLogger(__name__)

PUBLISHED = Counter("helpdesk_outbox_published_total", "Events relayed to the broker", ["source"])
PUBLISH_FAILURES = Counter("helpdesk_outbox_publish_failures_total", "Relay attempts that failed", ["source"])
PENDING = Gauge("helpdesk_outbox_pending", "Events committed but not yet confirmed by the broker", ["source"])
RELAY_DELAY = Histogram(
    "helpdesk_outbox_relay_delay_seconds", "From commit to broker confirm", ["source"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class ConfirmedPublisher:
    """Publishes a batch of events on one channel in confirm mode, then waits once for every confirm.

    nameko's Publisher waits for each message's confirm before sending the next: one broker round
    trip per event. Here a batch of N events costs one round trip; a nack, a timeout or a broken
    connection raises, and the caller keeps the whole batch for the next attempt (consumers drop the
    repeats by event id).

    With ``batch_exchange``, the same events also go there, one message per event type (in the batch's
    order), in the same confirm round (:func:`helpdesk_common.events.batch_exchange_name`).

    The frames of the whole batch are built here (:mod:`helpdesk_common.amqp_frames`) and written to the
    socket at once; confirms come back through the channel as before.
    """

    max_batch_bytes = 4 * 1024 * 1024
    """A batch message holds events up to about this size (a larger one alone): the broker refuses large
    messages (``max_message_size``), and a relay batch of long mails could pass it."""

    def __init__(self, amqp_uri, exchange, timeout=10.0, batch_exchange=None):
        self.amqp_uri = amqp_uri
        self.exchange = exchange
        self.batch_exchange = batch_exchange
        self.timeout = timeout
        self._connection = None
        self._channel = None
        self._next_tag = 0
        self._unconfirmed = set()
        self._refused = False

    def _open(self):
        connection = Connection(self.amqp_uri)
        channel = connection.channel()
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self.exchange(channel).declare()
        if self.batch_exchange is not None:
            self.batch_exchange(channel).declare()
        self._connection, self._channel, self._next_tag = connection, channel, 0

    def _on_ack(self, delivery_tag, multiple):
        if multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag, multiple):
        self._refused = True
        self._on_ack(delivery_tag, multiple)

    def publish_batch(self, envelopes):
        """Send every envelope (persistent, JSON) and return once the broker confirmed them all."""
        try:
            if self._connection is None:
                self._open()
            self._refused = False
            by_type, frames = {}, []
            for envelope in envelopes:
                body = json.dumps(envelope).encode()
                by_type.setdefault(envelope["type"], []).append(body)
                frames.append(self._frames(self.exchange, envelope["type"], body, envelope["id"],
                                           {"correlation_id": envelope.get("correlation_id") or ""}))
            if self.batch_exchange is not None:
                source = envelopes[0].get("source") if envelopes else None
                for event_type, bodies in by_type.items():
                    for part in _parts(bodies, self.max_batch_bytes):  # the events encoded once, joined
                        body = (b'{"source": ' + json.dumps(source).encode() + b', "type": '
                                + json.dumps(event_type).encode() + b', "events": [' + b", ".join(part) + b"]}")
                        frames.append(self._frames(self.batch_exchange, event_type, body, str(uuid.uuid4()),
                                                   {"events": len(part)}))
            self._channel.connection.transport.write(b"".join(frames))  # the whole batch in one write
            deadline = time.monotonic() + self.timeout
            while self._unconfirmed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the broker did not confirm {len(self._unconfirmed)} event(s)")
                self._connection.drain_events(timeout=remaining)
            if self._refused:
                raise ConnectionError("the broker refused (nacked) an event")
        except BaseException:
            self.close()
            raise

    def _frames(self, exchange, routing_key, body, message_id, headers):
        """One persistent JSON message's frames (:mod:`.amqp_frames`); its confirm is now awaited."""
        channel = self._channel
        frames = publish_frames(channel.channel_id, channel.connection.frame_max, exchange.name, routing_key, body,
                                message_id, headers_table(headers))
        self._next_tag += 1
        self._unconfirmed.add(self._next_tag)
        return frames

    def close(self):
        connection, self._connection, self._channel = self._connection, None, None
        self._unconfirmed = set()
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken; dropping it is all that is left to do
                pass


def _parts(bodies, limit):
    """``bodies`` in order, cut into runs of about ``limit`` bytes at most (one body larger runs alone)."""
    part, size = [], 0
    for body in bodies:
        if part and size + len(body) > limit:
            yield part
            part, size = [], 0
        part.append(body)
        size += len(body) + 2
    if part:
        yield part


class OutboxRelay(DependencyProvider):
    """Relays a service's outbox to RabbitMQ.

    :param outbox_model: the service's outbox model class.
    :param config_key: the config entry with the database URL (the same as the service's ``Database``).
    :param source: the service whose events these are (names the exchange ``<source>.events``).
    """

    batch_size = 200
    poll_interval = 1.0
    retention = timedelta(days=1)
    retry_delay = 1.0
    stop_timeout = 10.0

    def __init__(self, outbox_model, config_key, source):
        self.outbox_model = outbox_model
        self.config_key = config_key
        self.source = source
        self._wake = Event()
        self._running = False
        self._publisher = None
        self._exchange = None
        self._last_purge = None
        self._thread = None
        self._query = self._query_locking = self._mark = None

    def setup(self):
        config = self.container.config
        self.sessions = sessionmaker(engine_for(config[self.config_key]), expire_on_commit=False)
        self._exchange, batches = event_exchanges(self.source, config.get("AUTO_DELETE_EVENT_EXCHANGES", False))
        self._publisher = ConfirmedPublisher(config[AMQP_URI_CONFIG_KEY], self._exchange, batch_exchange=batches)
        self.poll_interval = float(config.get("OUTBOX_POLL_INTERVAL", self.poll_interval))

    def start(self):
        self._running = True
        register_relay(self.outbox_model, self)
        self._thread = self.container.spawn_managed_thread(self._run)

    def stop(self):
        # nameko kills managed threads once stop() returns: let a batch in flight be confirmed and
        # marked first, or the next relay sends it again.
        self._running = False
        unregister_relay(self.outbox_model, self)
        self.wake()
        if self._thread is not None:
            with eventlet.Timeout(self.stop_timeout, False):
                self._thread.wait()
        if self._publisher is not None:
            self._publisher.close()

    def kill(self):
        self._running = False
        unregister_relay(self.outbox_model, self)
        self.wake()

    def get_dependency(self, worker_ctx):
        return self

    def wake(self):
        """Ask the relay to look at the outbox now rather than at its next poll."""
        if not self._wake.ready():
            self._wake.send(True)

    def _run(self):
        while self._running:
            try:
                while self._running and self.relay_pending():
                    pass
            except Exception:  # the broker or database is down: keep the rows, try again shortly
                PUBLISH_FAILURES.labels(self.source).inc()
                log.exception("outbox relay failed; retrying in %ss", self.retry_delay)
                eventlet.sleep(self.retry_delay)
                continue
            with eventlet.Timeout(self.poll_interval, False):
                self._wake.wait()
            self._wake = Event()

    def relay_pending(self):
        """Publish one batch of unsent events. Returns True when a full batch was sent (more may wait)."""
        if self._query is None:
            # Built once, and run on a Core connection: a statement built per batch, and the ORM session's and
            # ORM bulk update's layers, cost the relay more CPU than its database work (2 ms a batch of four).
            table = self.outbox_model.__table__
            self._query = (select(table.c.seq, table.c.envelope, table.c.created_at)
                           .where(table.c.published_at.is_(None))
                           .order_by(table.c.seq).limit(self.batch_size))
            # Replicas share a PostgreSQL outbox: each takes rows no other relay holds, and holds them
            # (row locks only) until they are confirmed and marked.
            self._query_locking = self._query.with_for_update(skip_locked=True)
            self._mark = (update(table).where(table.c.seq.in_(bindparam("seqs", expanding=True)))
                          .values(published_at=bindparam("at")))
        engine = self.sessions.kw["bind"]
        connection = engine.connect()
        try:
            on_postgres = connection.dialect.name == "postgresql"
            rows = connection.execute(self._query_locking if on_postgres else self._query).all()
            if not on_postgres:
                # End the read at once and give the connection back (a SQLite process has one, which its
                # workers share): a SQLite transaction held across network I/O stalls writers. Two SQLite
                # processes may then publish the same row; consumers deduplicate by id.
                connection.close()
                connection = None
            PENDING.labels(self.source).set(len(rows))
            if not rows:
                self._purge_old(connection or engine)
                return False
            failpoint("outbox.before_publish")
            self._publisher.publish_batch([envelope for _seq, envelope, _created in rows])
            now = utcnow()
            for _seq, _envelope, created_at in rows:
                RELAY_DELAY.labels(self.source).observe(max(0.0, (now - created_at).total_seconds()))
            failpoint("outbox.after_publish")
            if connection is None:
                connection = engine.connect()
            connection.execute(self._mark, {"seqs": [row.seq for row in rows], "at": utcnow()})
            connection.commit()
        finally:
            if connection is not None:
                connection.close()
        PUBLISHED.labels(self.source).inc(len(rows))
        return len(rows) == self.batch_size

    def _purge_old(self, connectable):
        """Delete rows sent longer ago than ``retention``, at most once a minute (``connectable``: the relay's
        connection, or the engine to take one from)."""
        now = utcnow()
        if self._last_purge and now - self._last_purge < timedelta(minutes=1):
            return
        self._last_purge = now
        table = self.outbox_model.__table__
        with connectable.connect() if isinstance(connectable, Engine) else nullcontext(connectable) as connection:
            connection.execute(delete(table).where(table.c.published_at < now - self.retention))
            connection.commit()


