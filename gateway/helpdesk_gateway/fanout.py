"""One subscription per gateway process to some of a service's events, for the live streams.

Each gateway process (gunicorn forks several) holds one exclusive, auto-deleted queue bound to
``<source>.events`` for the event types a feed wants, on a thread of its own, and wakes the streams that
wait on it. The event only wakes: a stream then reads what it shows from the owning service, so a lost or
late event costs at most a keep-alive, never data. The chat streams (``api/chat.py``) and the workspace's
live list (``ui/live.py``) are the two feeds.
"""
import logging
import threading
import time
import uuid

from kombu import Connection, Exchange, Queue, binding

from helpdesk_common.events import exchange_name

from .rpc import ServiceUnavailable

log = logging.getLogger(__name__)


class EventFeed:
    """Subclasses name ``source`` and ``event_types`` and say in :meth:`on_event` what an event changes
    (called with the feed's condition held; it notifies the waiters afterwards)."""

    source = None
    event_types = ()
    also = {}  # further sources and their event types, on the same queue: {"intake": ("chat_started", ...)}
    unavailable = "The live feed is not available; retry shortly."

    def __init__(self, amqp_uri):
        self.amqp_uri = amqp_uri
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self._start_lock = threading.Lock()
        self._thread = None

    def start(self, timeout=10):
        """Subscribe (once per process: gunicorn forks workers, so not at import)."""
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=f"{self.source}-feed", daemon=True)
                self._thread.start()
        if not self._ready.wait(timeout):
            raise ServiceUnavailable(self.unavailable, code="broker_unavailable")

    @property
    def ready(self):
        """Subscribed now: an event published from here on reaches :meth:`on_event`."""
        return self._ready.is_set()

    def on_event(self, envelope):
        raise NotImplementedError

    def _run(self):
        while True:
            try:
                self._consume()
            except Exception:
                log.warning("the %s feed lost the broker; reconnecting", self.source, exc_info=True)
            self._ready.clear()
            with self._changed:
                self._changed.notify_all()  # streams re-read what they show meanwhile
            time.sleep(1)

    def _consume(self):
        bindings = []
        for source, event_types in {self.source: self.event_types, **self.also}.items():
            exchange = Exchange(exchange_name(source), type="topic", durable=True)
            bindings += [binding(exchange, routing_key=name) for name in event_types]
        queue = Queue(f"gateway-{self.source}-{uuid.uuid4().hex}", exclusive=True, auto_delete=True,
                      bindings=bindings)
        with Connection(self.amqp_uri, heartbeat=30) as connection:
            with connection.Consumer(queue, callbacks=[self._announce], accept=["json"]):
                self._ready.set()
                while True:
                    try:
                        connection.drain_events(timeout=1)
                    except TimeoutError:
                        connection.heartbeat_check()

    def _announce(self, body, message):
        with self._changed:
            try:
                self.on_event(body)
            except (KeyError, TypeError):  # not the shape the feed reads: nothing to wake anyone for
                pass
            else:
                self._changed.notify_all()
        message.ack()
