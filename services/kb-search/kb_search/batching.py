"""Index writes in batches: article events handled at the same moment share one index write and commit.

Each event handler hands its delivery to :meth:`IndexBatcher.submit` and waits there; one flusher
greenthread at a time takes everything waiting (up to ``max_batch``), applies it with a single call, and
wakes each handler with its own answer, or with the batch's error. A handler whose batch failed raises,
so its event goes to retry and then parking exactly as a handler of its own would. No nameko in here.
"""
import logging

import eventlet
from eventlet.event import Event

log = logging.getLogger(__name__)


class IndexBatcher:
    """Collects deliveries ``(event_id, handler, article_id)`` and applies them together.

    :param max_batch: deliveries per index write at most.
    :param linger: seconds the flusher waits before taking a batch, so handlers started together by
        one prefetch share it (a lone event is delayed by no more than this).
    """

    def __init__(self, max_batch=500, linger=0.02):
        self.max_batch = max_batch
        self.linger = linger
        self._waiting = []  # [(delivery, apply, Event)]
        self._flusher = None

    def submit(self, delivery, apply):
        """Wait until ``delivery`` was applied in a batch; ``apply(deliveries) -> {delivery: result}``.

        Returns this delivery's result; raises the error the batch failed with."""
        done = Event()
        self._waiting.append((delivery, apply, done))
        if self._flusher is None:
            self._flusher = eventlet.spawn(self._flush)
        return done.wait()

    def _flush(self):
        try:
            while self._waiting:
                eventlet.sleep(self.linger)
                batch, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
                apply = batch[0][1]  # every handler of a service passes the same database and index
                try:
                    results = apply([delivery for delivery, _apply, _done in batch])
                except Exception as error:  # every handler of the batch retries (or parks) its own event
                    log.warning("index batch of %s failed: %r", len(batch), error)
                    for _delivery, _apply, done in batch:
                        done.send_exception(error)
                    continue
                for delivery, _apply, done in batch:
                    done.send(results.get(delivery, False))
        finally:
            self._flusher = None
