"""Reading one mailbox to the end, two batches in flight. No nameko here (eventlet for the overlap).

While the tickets service creates the tickets of batch *n* (intake only waits on the RPC), the poller
fetches, parses and claims batch *n + 1*, and sends batch *n + 1* to the tickets service while it
records the outcome of batch *n*. The order that keeps mail safe does not change: a batch is marked
processed on the server only after its outcome (and the ``message_received`` events) is committed, and
the batches' outcomes are recorded one after the other, in UID order.
"""
import logging
import time

import eventlet

from .domain.ingest import Incoming

log = logging.getLogger(__name__)


def _complete_and_mark(ingestor, mailbox, fetched, batch, previous=None):
    """Finish ``batch`` and mark its processed messages; True when every message of it was done.

    ``previous``: the greenthread completing the batch before; this batch's tickets calls go out at once,
    its outcome is recorded after the previous batch's."""
    started = time.perf_counter()
    try:
        ingestor.call_tickets(batch)
        if previous is not None:
            previous.wait()
        done = ingestor.record(batch)
    finally:
        ingestor.release(batch)
    completed = time.perf_counter()
    mailbox.mark_processed([message.uid for message, ok in zip(fetched, done) if ok])
    log.debug("%s: %d message(s) completed in %.0fms, marked in %.0fms", mailbox.config.name, len(fetched),
              (completed - started) * 1000, (time.perf_counter() - completed) * 1000)
    return all(done)


def drain(mailbox, ingestor, batch_size, max_bytes=None):
    """Ingest every unseen message of ``mailbox``, ``batch_size`` at a time; returns how many were fetched.

    Stops early when a batch could not be done completely (the tickets service is down, say): what is
    left stays unseen and claimed, and the next poll resumes it."""
    pending, previous, after, total = None, None, None, 0
    try:
        while True:
            started = time.perf_counter()
            fetched = mailbox.fetch_unprocessed(batch_size, after=after, max_bytes=max_bytes)
            if not fetched:
                break
            total += len(fetched)
            after = int(fetched[-1].uid)
            fetched_at = time.perf_counter()
            batch = ingestor.prepare([Incoming(raw=m.raw, mailbox=mailbox.config, uid=m.uid, size=m.size,
                                               headers_only=m.headers_only) for m in fetched])
            log.debug("%s: %d message(s) fetched in %.0fms, prepared in %.0fms", mailbox.config.name, len(fetched),
                      (fetched_at - started) * 1000, (time.perf_counter() - fetched_at) * 1000)
            previous, pending = pending, eventlet.spawn(_complete_and_mark, ingestor, mailbox, fetched, batch, pending)
            if previous is not None:
                all_done, previous = previous.wait(), None
                if not all_done:
                    break  # what is left of it stays claimed and unseen: the next poll resumes it
            if len(fetched) < batch_size:
                break
        if pending is not None:
            pending, running = None, pending
            running.wait()
    finally:
        # The poll was abandoned (timeout) or failed: stop the batches in flight (their claims stay pending).
        for thread in (pending, previous):
            if thread is not None:
                thread.kill()
    return total
