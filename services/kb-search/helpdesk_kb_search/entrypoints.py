"""Event handlers with a bounded share of the workers, so that searches always find a free worker.

A large import publishes thousands of article events at once, and a mail backlog thousands of
``ticket_created``. With plain handlers they would take every one of the service's workers
(``max_workers``) and searches, the portal's suggestions among them, would queue behind them. Here such an
event first takes one of its kind's slots (``KB_INDEXING_WORKERS`` for the three article handlers,
``KB_TICKET_WORKERS`` for new tickets' suggestions) and only then a worker, so the other workers stay free
for searches; events waiting for a slot hold no worker. Retry and parking are ``reliable_handler``'s,
unchanged.
"""
from eventlet.semaphore import Semaphore
from nameko.extensions import SharedExtension

from helpdesk_common.adapters.consumer import ReliableBatchHandler, ReliableEventHandler

INDEXING_WORKERS = "KB_INDEXING_WORKERS"
TICKET_WORKERS = "KB_TICKET_WORKERS"


class WorkerShare(SharedExtension):
    """How many handlers of one kind (named by their config key) run at once, per service process."""

    def __init__(self, config_key):
        self.config_key = config_key

    @property
    def sharing_key(self):
        return (type(self), self.config_key)  # one pool per kind, shared by that kind's handlers

    def setup(self):
        # Unset: half the workers. Each slot's handler waits for its batch, so more slots, larger batches.
        slots = self.container.config.get(self.config_key) or max(1, self.container.max_workers // 2)
        self.slots = Semaphore(int(slots))


class BoundedHandler(ReliableEventHandler):
    """``reliable_handler`` that runs at most ``config[share]`` of its kind at a time."""

    def __init__(self, source_service, event_type, share=INDEXING_WORKERS, **kwargs):
        self.share = WorkerShare(share)
        super().__init__(source_service, event_type, **kwargs)

    def handle_message(self, body, message):
        # Runs in its own greenthread (nameko's queue consumer spawns one per message): waiting here
        # blocks neither the consumer nor a worker.
        self.share.slots.acquire()
        try:
            super().handle_message(body, message)
        except BaseException:
            self.share.slots.release()
            raise

    def handle_message_processed(self, message, result=None, exc_info=None):
        try:
            super().handle_message_processed(message, result, exc_info)
        finally:
            self.share.slots.release()


class BoundedBatchHandler(ReliableBatchHandler):
    """``reliable_batch_handler`` that runs at most ``config[share]`` of its kind at a time: a slot is
    taken per message (a batch of events), and given back when its worker ended (or none was started)."""

    def __init__(self, source_service, event_type, share=TICKET_WORKERS, **kwargs):
        self.share = WorkerShare(share)
        super().__init__(source_service, event_type, **kwargs)

    def handle_message(self, body, message):
        self.share.slots.acquire()  # in the queue consumer's greenthread for this message, as above
        started = False
        try:
            started = super().handle_message(body, message)
        finally:
            if not started:
                self.share.slots.release()
        return started

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        finally:
            self.share.slots.release()


def indexing_handler(source_service, event_type, **kwargs):
    """``@indexing_handler("kb_search", "article_published")``: an article event, on ``KB_INDEXING_WORKERS``."""
    return BoundedHandler.decorator(source_service, event_type, share=INDEXING_WORKERS, **kwargs)


def ticket_handler(source_service, event_type, **kwargs):
    """``@ticket_handler("tickets", "ticket_created")``: new tickets' events, a batch at a time (the method
    takes a list), on ``KB_TICKET_WORKERS``."""
    return BoundedBatchHandler.decorator(source_service, event_type, share=TICKET_WORKERS, **kwargs)
