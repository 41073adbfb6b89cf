"""Reading one mailbox to the end, two batches in flight. No nameko here (eventlet for the overlap).

While the tickets service creates the tickets of batch *n* (intake only waits on the RPC), the poller
fetches, parses and claims batch *n + 1*. The order that keeps mail safe does not change: a batch is
marked processed on the server only after its outcome (and the ``message_received`` events) is
committed, and the batches complete one after the other, in UID order.
"""
import logging
import time

import eventlet

from .ingest import Incoming

log = logging.getLogger(__name__)


def _complete_and_mark(ingestor, mailbox, fetched, batch):
    """Finish ``batch`` and mark its processed messages; True when every message of it was done."""
    started = time.perf_counter()
    done = ingestor.complete(batch)
    completed = time.perf_counter()
    mailbox.mark_processed([uid for (uid, _), ok in zip(fetched, done) if ok])
    log.debug("%s: %d message(s) completed in %.0fms, marked in %.0fms", mailbox.config.name, len(fetched),
              (completed - started) * 1000, (time.perf_counter() - completed) * 1000)
    return all(done)


def drain(mailbox, ingestor, batch_size):
    """Ingest every unseen message of ``mailbox``, ``batch_size`` at a time; returns how many were fetched.

    Stops early when a batch could not be done completely (the tickets service is down, say): what is
    left stays unseen and claimed, and the next poll resumes it."""
    pending, after, total = None, None, 0
    try:
        while True:
            started = time.perf_counter()
            fetched = mailbox.fetch_unprocessed(batch_size, after=after)
            if not fetched:
                break
            total += len(fetched)
            after = int(fetched[-1][0])
            fetched_at = time.perf_counter()
            batch = ingestor.prepare([Incoming(raw=raw, mailbox=mailbox.config, uid=uid) for uid, raw in fetched])
            log.debug("%s: %d message(s) fetched in %.0fms, prepared in %.0fms", mailbox.config.name, len(fetched),
                      (fetched_at - started) * 1000, (time.perf_counter() - fetched_at) * 1000)
            if pending is not None and not pending.wait():
                pending = None
                break  # this batch's claims stay pending: the next poll resumes them
            pending = eventlet.spawn(_complete_and_mark, ingestor, mailbox, fetched, batch)
            if len(fetched) < batch_size:
                break
        if pending is not None:
            pending, running = None, pending
            running.wait()
    finally:
        if pending is not None:  # the poll was abandoned (timeout) or failed: stop the batch in flight
            pending.kill()
    return total
