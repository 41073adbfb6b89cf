"""Consuming reliably: every handler is idempotent, and a failing handler never loses its event.

Delivery is at least once, so a handler records the event id it processed in the same transaction as
its effect (:func:`helpdesk_common.inbox.first_delivery`) and skips repeats. Declare the table with
``class ProcessedEvent(ProcessedEventMixin, Base)``.

A handler that raises must not lose its event either: declare it with :func:`reliable_handler` instead
of nameko's ``event_handler``, which acks and drops the message on error. A failed event is retried
with backoff, then parked on ``helpdesk.parked`` where an operator sees it and replays it
(:mod:`helpdesk_common.parking`, CLI ``helpdesk-parked``)::

    class RoutingService:
        name = "routing"
        db = Database("ROUTING_DB_URL")

        @reliable_handler("tickets", "ticket_created")
        def on_ticket_created(self, event):
            with self.db.begin() as session:
                if not first_delivery(session, ProcessedEvent, event["id"], "routing.on_ticket_created"):
                    return
                ...  # the effect, in the same transaction

A handler that sees an event per new ticket (or per routing decision) takes them a batch at a time
instead: :func:`reliable_batch_handler` reads ``<source>.batches``, where the outbox relay puts each relay
batch grouped by type, and its method gets a list (handle it with :func:`first_deliveries`, in one
transaction). Use it where events come by the thousand; :func:`reliable_handler` elsewhere.
"""
import json
import logging
import traceback
import uuid
from contextlib import contextmanager
from functools import partial

import eventlet
from amqp.exceptions import PreconditionFailed
from kombu import Queue
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.events import SERVICE_POOL, EventHandler, EventHandlerConfigurationError
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import SharedExtension
from prometheus_client import Counter

from ..database import utcnow
from ..errors import EXPECTED_ERRORS
from .exchanges import event_exchanges
from .queues import NodeLossQueueConsumer, quorum
from .parking import (
    ATTEMPTS, BROKER_HEADER_PREFIXES, ERROR, ERROR_TYPE, EXCHANGE, FAILED_AT, FIRST_FAILED_AT, HANDLER,
    PARKED_AT, PARKED_REASON, QUEUE, ROUTING_KEY, TRACEBACK, connect, copied_properties, parked_queue,
    publish_confirmed, without_broker_headers,
)

log = logging.getLogger(__name__)


# --- The entrypoint -------------------------------------------------------------------------------

DEFAULT_BACKOFF = (1, 5, 30, 120)
"""Seconds to wait before the 2nd, 3rd, ... attempt; the last value repeats if attempts outnumber it."""

RETRIES = Counter("helpdesk_consumer_retries_total",
                  "Failed event deliveries scheduled for another attempt", ["service", "handler"])
PARKED = Counter("helpdesk_consumer_parked_total",
                 "Events given up on and parked for an operator", ["service", "handler", "reason"])
SKIPPED = Counter("helpdesk_consumer_skipped_total",
                  "Events acknowledged without a worker because the handler's skip rule said so",
                  ["service", "handler"])
SPLIT = Counter("helpdesk_consumer_batches_split_total",
                "Batches of events a handler failed on, put back one event per message", ["service", "handler"])
REROUTE_FAILURES = Counter("helpdesk_consumer_reroute_failures_total",
                           "Failed events that could not be sent to retry or parking (left in their queue)",
                           ["service", "handler"])

MAX_ERROR_CHARS = 1000
MAX_TRACEBACK_CHARS = 4000


class Republisher(SharedExtension):
    """Confirmed publishing for a container's reliable handlers: one small pool of broker connections.

    A sub-extension, so nameko stops it only after the last worker finished (a worker republishes in
    its own greenthread, after the handler returned).
    """

    stopped = False

    def setup(self):
        config = self.container.config
        self.template = connect(config[AMQP_URI_CONFIG_KEY], ssl=config.get(AMQP_SSL_CONFIG_KEY),
                                login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
        # One connection per concurrent worker at most; a connection that failed is replaced.
        self.pool = self.template.Pool(limit=self.container.max_workers)

    @contextmanager
    def connection(self):
        """A pooled connection; one that failed is reset, and reconnects on its next use."""
        # Not ``with pool.acquire()``: kombu's PooledConnection closes a failed connection and then
        # puts it back in the pool, closed for good.
        connection = self.pool.acquire(block=True)
        try:
            yield connection
        except Exception:
            connection.collect()
            raise
        finally:
            connection.release()

    @contextmanager
    def starting(self):
        """Around a handler's declarations at start. An error once stop() ran is dropped: the container is
        being killed (another extension's start failed) and closed the connections under this one, still
        declaring in a green thread of nameko's start. Raised, the error would end that green thread inside
        eventlet's hub and surface in whatever runs next."""
        try:
            yield
        except Exception:
            if not self.stopped:
                raise

    def declare(self, *entities):
        with self.connection() as connection:
            channel = connection.channel()
            try:
                for entity in entities:
                    entity(channel).declare()
            except PreconditionFailed as error:
                if "x-queue-type" in str(error):  # a queue of an installation from before quorum queues
                    raise PreconditionFailed(
                        f"{error}. The platform's queues are quorum queues now: move the classic ones as "
                        "deploy/README.md says ('Moving an existing installation to quorum queues')") from error
                raise
            finally:
                connection.maybe_close_channel(channel)

    def publish(self, queue, message, headers):
        """Copy ``message`` (raw body, properties) to ``queue`` with ``headers``; return once confirmed."""
        with self.connection() as connection:
            publish_confirmed(connection, message.body, routing_key=queue.name, headers=headers,
                              content_type=message.content_type, content_encoding=message.content_encoding,
                              declare=[queue], **copied_properties(message))

    def stop(self):
        self.stopped = True
        pool = getattr(self, "pool", None)  # absent when the container failed before setup
        if pool is not None:
            pool.force_close_all()

    def kill(self):
        self.stop()


class ReliableEventHandler(EventHandler):
    """nameko's ``event_handler`` that never drops an event its handler failed on.

    Queues (all durable, quorum (:mod:`.queues`); a handler's queues are shared by every replica of its service)::

        <source>.events --(event type)--> evt-<source>-<type>--<service>.<method>     the handler's queue,
             (topic)                         |   ^                                    named and declared
                                             |   |                                    exactly as nameko's
                 handler raised, retryable:  |   |  dead-lettered through the default
                 republished, attempts + 1   v   |  exchange when the TTL expires
                            evt-<source>-<type>--<service>.<method>.retry-<ms>ms     one per backoff delay:
                                                                                      x-message-ttl = <ms>
                 retries used up, or an expected error (``expected_exceptions``):
                 republished to ``helpdesk.parked`` (see :mod:`helpdesk_common.parking`)

    - The handler's queue keeps nameko's name and arguments, so a handler can move from
      ``event_handler`` to ``reliable_handler`` without deleting its queue (a declaration with other
      arguments would fail with PRECONDITION_FAILED).
    - A retry goes back to *this* handler's queue only (default exchange, routing key = queue name),
      never through the topic exchange: the other handlers of the event do not see it again.
    - One retry queue per delay, each with a queue-wide TTL, rather than one queue with per-message
      TTLs: RabbitMQ only expires messages at the head of a queue, so an event waiting 120 s would hold
      back one due in 1 s behind it. With one delay per queue, the head always expires first. Queue
      names carry the delay, so changing ``backoff`` creates new queues instead of conflicting with the
      old ones (which drain into the handler's queue by themselves).
    - The failed message is republished (same body bytes and properties, plus ``x-helpdesk-*`` headers:
      attempts, handler, last error and traceback, times) with publisher confirms, mandatory, and only
      then acknowledged. If that republish fails (broker trouble), the message is requeued instead, after
      a short pause, with its headers as they were: nothing is lost, and the attempt is simply run again.
      A crash between the confirm and the ack delivers the event twice; handlers are idempotent
      (:func:`first_delivery`).
    - RabbitMQ's ``x-death`` headers (added when a retry queue dead-letters the message) are not copied
      into the republished message: they would pile up with every pass, and RabbitMQ reads that history
      when it decides whether a message is going round a dead-letter cycle (which it drops). The
      attempt count is ours, in ``x-helpdesk-attempts``.

    :param source_service: the service that publishes the event.
    :param event_type: the event type (the routing key).
    :param max_attempts: runs of the handler before the event is parked (the first run included).
    :param backoff: seconds before each retry: ``backoff[i]`` before attempt ``i + 2``.
    :param expected_exceptions: errors that no retry will fix (the event itself is wrong): parked at
        once, and logged by nameko as expected rather than as crashes. Defaults to
        :class:`~helpdesk_common.errors.HelpdeskError` and its subclasses; pass a narrower tuple if, say,
        a ``NotFound`` can be cured by waiting (an event that overtook the one creating the record).
    :param skip: ``skip(event) -> bool``, asked before a worker is started: an event it answers True
        for is acknowledged at once, without a worker (no dependencies, hooks or transaction). For events
        a handler receives by the thousand only to ignore them, such as its own decision echoed back: in
        a burst of mail, starting a worker per ignored event cost more than the work. Keep it a cheap
        look at the event; if it raises, the event goes to the handler as usual.
    """

    republisher = Republisher()
    queue_consumer = NodeLossQueueConsumer()

    reroute_failure_delay = 1.0
    """Seconds a worker waits before requeueing an event it could not send to retry or parking."""

    def __init__(self, source_service, event_type, max_attempts=5, backoff=DEFAULT_BACKOFF,
                 expected_exceptions=EXPECTED_ERRORS, skip=None, **kwargs):
        for fixed in ("handler_type", "reliable_delivery", "requeue_on_error"):
            if fixed in kwargs:
                raise EventHandlerConfigurationError(
                    f"reliable_handler does not take {fixed}: it is a service-pool handler with reliable "
                    "delivery, and failures go to retry or parking rather than being requeued")
        backoff = tuple(backoff)
        if int(max_attempts) < 1:
            raise EventHandlerConfigurationError("max_attempts must be at least 1")
        if not backoff or any(delay < 0 for delay in backoff):
            raise EventHandlerConfigurationError("backoff needs at least one delay, none negative")
        self.max_attempts = int(max_attempts)
        self.backoff = backoff
        self.skip = skip
        super().__init__(source_service, event_type, handler_type=SERVICE_POOL, reliable_delivery=True,
                         requeue_on_error=False, expected_exceptions=expected_exceptions, **kwargs)

    @property
    def handler_name(self):
        """``<service>.<method>``: how parked events and metrics name this handler."""
        return f"{self.container.service_name}.{self.method_name}"

    def setup(self):
        super().setup()  # declares nothing yet: builds self.queue and registers with the queue consumer
        self.queue = quorum(self.queue)  # read by the queue consumer only when it starts consuming
        self.retry_queues = {}
        for delay in self.backoff[:self.max_attempts - 1]:
            ms = int(round(delay * 1000))
            self.retry_queues[ms] = quorum(Queue(
                f"{self.queue.name}.retry-{ms}ms", durable=True, auto_delete=False,
                queue_arguments={
                    "x-message-ttl": ms,
                    "x-dead-letter-exchange": "",  # the default exchange: routes by queue name ...
                    "x-dead-letter-routing-key": self.queue.name,  # ... back to this handler's queue
                },
            # A quorum queue dead-letters at most once by default (a message is dropped if the handler's
            # queue has no leader at that moment); at least once needs reject-publish. Quorum-only arguments.
            ), **{"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"})
        self.parked_queue = parked_queue()

    def start(self):
        # After every extension's setup (the republisher's included): declare now, so the queues are
        # visible to operators, and a conflicting declaration stops the service at once.
        with self.republisher.starting():
            self.republisher.declare(*self.retry_queues.values(), self.parked_queue)

    def delay_ms(self, attempts):
        """Milliseconds to wait after ``attempts`` failed runs."""
        delay = self.backoff[min(attempts, len(self.backoff)) - 1]
        return int(round(delay * 1000))

    def unpack_message_headers(self, message):
        # Keep the retry bookkeeping and RabbitMQ's x-death out of the worker's context data, or nameko
        # would copy them into every message the handler sends on (as "nameko.x-helpdesk-...").
        return {key: value for key, value in super().unpack_message_headers(message).items()
                if not key.startswith(("x-helpdesk-",) + BROKER_HEADER_PREFIXES)}

    def handle_message(self, body, message):
        if self.skip is not None and self._skips(body):
            self.queue_consumer.ack_message(message)
            SKIPPED.labels(self.container.service_name, self.method_name).inc()
            return
        super().handle_message(body, message)

    def _skips(self, event):
        try:
            return bool(self.skip(event))
        except Exception:
            log.exception("%s: the skip rule failed on an event; handling it", self.handler_name)
            return False

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return
        try:
            self.reroute(message, exc_info)
        except Exception:  # never raise here: it would kill the container. Keep the message instead.
            REROUTE_FAILURES.labels(self.container.service_name, self.method_name).inc()
            log.exception("%s could not send a failed event to retry or parking; requeueing it in %ss",
                          self.handler_name, self.reroute_failure_delay)
            eventlet.sleep(self.reroute_failure_delay)  # not a hot loop while the broker is unwell
            self.queue_consumer.requeue_message(message)
        else:
            self.queue_consumer.ack_message(message)

    def reroute(self, message, exc_info):
        """Republish a failed message to its retry queue, or park it; returns once the broker confirmed."""
        exc = exc_info[1]
        headers = without_broker_headers(message.headers)
        attempts = int(headers.get(ATTEMPTS) or 0) + 1
        now = utcnow().isoformat()
        error_type = type(exc)
        headers.update({
            ATTEMPTS: attempts,
            HANDLER: self.handler_name,
            QUEUE: self.queue.name,
            ERROR: f"{error_type.__name__}: {_safe(str, exc)}"[:MAX_ERROR_CHARS],
            ERROR_TYPE: f"{error_type.__module__}.{error_type.__qualname__}",
            TRACEBACK: _safe(lambda info: "".join(traceback.format_exception(*info)), exc_info)[
                -MAX_TRACEBACK_CHARS:],
            FAILED_AT: now,
        })
        headers.setdefault(FIRST_FAILED_AT, now)
        # Kept from the first failure on: a retried or replayed message arrives through the default
        # exchange, which says nothing of where the event came from.
        headers.setdefault(EXCHANGE, message.delivery_info.get("exchange") or "")
        headers.setdefault(ROUTING_KEY, message.delivery_info.get("routing_key") or "")
        event_id = _event_id(message)
        service, method = self.container.service_name, self.method_name

        if isinstance(exc, self.expected_exceptions):
            reason = "non_retryable"
        elif attempts >= self.max_attempts:
            reason = "exhausted"
        else:
            ms = self.delay_ms(attempts)
            self.republisher.publish(self.retry_queues[ms], message, headers)
            RETRIES.labels(service, method).inc()
            log.warning("%s failed on event %s (attempt %s of %s): %s; retrying in %sms",
                        self.handler_name, event_id, attempts, self.max_attempts, headers[ERROR], ms)
            return

        headers.update({PARKED_AT: now, PARKED_REASON: reason})
        self.republisher.publish(self.parked_queue, _MessageCopy(message, event_id), headers)
        PARKED.labels(service, method, reason).inc()
        log.error("%s parked event %s after %s attempt(s) (%s): %s", self.handler_name, event_id,
                  attempts, reason, headers[ERROR])


reliable_handler = ReliableEventHandler.decorator
"""``@reliable_handler("tickets", "ticket_created")``: like nameko's ``@event_handler``, without loss."""


class ReliableBatchHandler(ReliableEventHandler):
    """:class:`ReliableEventHandler` whose method takes a *list* of events, many per message.

    It consumes ``<source>.batches`` (:func:`helpdesk_common.events.batch_exchange_name`), where the
    outbox relay puts one message per event type per relay batch, instead of one message per event on
    ``<source>.events``: the broker stores and delivers a batch once, not each event, and the service
    starts one worker for it. Everything else is :class:`ReliableEventHandler`'s:

    - The queue keeps its name (``evt-<source>-<type>--<service>.<method>``); at start it is bound to the
      batches exchange and unbound from the per-event one, so what waited in it when the service moved to
      batches (single events) is still taken: a message is a batch (``{"events": [...]}``) or one event.
      Stop every replica of the old version before starting this one: an old replica cannot read batches.
    - ``skip`` is asked per event; a message whose events are all skipped is acknowledged without a worker.
    - When the handler raises on a batch of several events, the batch is split: each event is put back on
      this handler's queue as a message of its own (confirmed, then the batch is acknowledged), so a bad
      event is retried, then parked, alone, and its neighbours go through at their next run. A single event
      that fails is retried and parked exactly as with ``reliable_handler``; ``helpdesk-parked replay``
      sends it back to this queue, which takes single events.
    - Handlers stay idempotent per event (:func:`first_deliveries`): a batch can be delivered again whole.
    """

    def setup(self):
        super().setup()  # nameko's queue (name, per-event exchange), the retry queues, parking
        self.per_event_exchange = self.queue.exchange
        _, batches = event_exchanges(self.source_service,
                                     self.container.config.get("AUTO_DELETE_EVENT_EXCHANGES", False))
        # The queue consumer reads ``self.queue`` when it starts consuming, after every setup.
        self.queue = quorum(Queue(self.queue.name, exchange=batches, routing_key=self.event_type, durable=True,
                                  auto_delete=False, exclusive=False))

    def start(self):
        super().start()
        with self.republisher.starting(), self.republisher.connection() as connection:
            channel = connection.channel()
            try:
                self.queue(channel).declare()  # the queue and its binding to the batches
                self.per_event_exchange(channel).declare()
                channel.queue_unbind(self.queue.name, self.per_event_exchange.name, self.event_type)
            finally:
                connection.maybe_close_channel(channel)

    def handle_message(self, body, message):
        """Start a worker with the message's events (those ``skip`` keeps); True when one was started."""
        events = body["events"] if isinstance(body, dict) and isinstance(body.get("events"), list) else [body]
        kept = [event for event in events if self.skip is None or not self._skips(event)]
        if len(kept) < len(events):
            SKIPPED.labels(self.container.service_name, self.method_name).inc(len(events) - len(kept))
        if not kept:
            self.queue_consumer.ack_message(message)
            return False
        try:  # nameko's Consumer.handle_message, with the list as the argument
            self.container.spawn_worker(self, (kept,), {}, context_data=self.unpack_message_headers(message),
                                        handle_result=partial(self.handle_result, message))
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)
            return False
        return True

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        events = worker_ctx.args[0]
        if exc_info is not None and len(events) > 1:
            self._split(message, events, exc_info)
            return result, exc_info
        self.handle_message_processed(message, result, exc_info)
        return result, exc_info

    def _split(self, message, events, exc_info):
        """Put each event of a failed batch back on this handler's queue alone, then ack the batch."""
        try:
            for event in events:
                self.republisher.publish(self.queue, _SingleEvent(event), {})
        except Exception:  # as in handle_message_processed: never raise here, keep the batch instead
            REROUTE_FAILURES.labels(self.container.service_name, self.method_name).inc()
            log.exception("%s could not split a failed batch; requeueing it in %ss", self.handler_name,
                          self.reroute_failure_delay)
            eventlet.sleep(self.reroute_failure_delay)
            self.queue_consumer.requeue_message(message)
            return
        SPLIT.labels(self.container.service_name, self.method_name).inc()
        log.warning("%s failed on a batch of %s events (%s: %s); each is retried alone", self.handler_name,
                    len(events), exc_info[0].__name__, _safe(str, exc_info[1]))
        self.queue_consumer.ack_message(message)


reliable_batch_handler = ReliableBatchHandler.decorator
"""``@reliable_batch_handler("tickets", "ticket_created")``: the method takes a list of events."""


def _safe(describe, value):
    """``describe(value)``, or a placeholder: an exception whose ``__str__`` fails must still be parked."""
    try:
        return describe(value)
    except Exception:
        return f"<{describe.__name__} failed on {type(value).__name__}>"


def _event_id(message):
    """The message id the outbox sets (the envelope's id), else the envelope's own ``id``."""
    message_id = message.properties.get("message_id")
    if message_id:
        return message_id
    try:
        body = json.loads(message.body)
    except (TypeError, ValueError):
        return None
    return body.get("id") if isinstance(body, dict) else None


class _SingleEvent:
    """One event of a batch ``message``, as :meth:`Republisher.publish` reads a message."""

    def __init__(self, event):
        self.body = json.dumps(event).encode()
        self.content_type = "application/json"
        self.content_encoding = "utf-8"
        self.properties = {"message_id": event.get("id") or str(uuid.uuid4()),
                           **({"type": event["type"]} if isinstance(event.get("type"), str) else {})}


class _MessageCopy:
    """``message`` as :meth:`Republisher.publish` reads it, with a message id for operators to name it."""

    def __init__(self, message, event_id):
        self.body = message.body
        self.content_type = message.content_type
        self.content_encoding = message.content_encoding
        self.properties = dict(message.properties, message_id=event_id or message.properties.get("message_id")
                               or str(uuid.uuid4()))
