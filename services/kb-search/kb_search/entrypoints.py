"""The entrypoint that keeps the index in step: ``reliable_handler`` with a bounded share of the workers.

A large import publishes thousands of article events at once. With plain handlers they would take every
one of the service's workers (``max_workers``) and searches would queue behind them. Here an article
event first takes one of ``KB_INDEXING_WORKERS`` slots (shared by the three article handlers) and only
then a worker, so the other workers stay free for searches; events waiting for a slot hold no worker.
Retry and parking are ``reliable_handler``'s, unchanged.
"""
from eventlet.semaphore import Semaphore
from nameko.extensions import SharedExtension

from helpdesk_common.consumer import ReliableEventHandler

INDEXING_WORKERS = "KB_INDEXING_WORKERS"


class IndexingSlots(SharedExtension):
    """How many article events are handled at once, per service process."""

    def setup(self):
        # Unset: half the workers. Each slot's handler waits for its batch, so more slots, larger batches.
        slots = self.container.config.get(INDEXING_WORKERS) or max(1, self.container.max_workers // 2)
        self.slots = Semaphore(int(slots))


class IndexingHandler(ReliableEventHandler):
    """``reliable_handler`` for article events, at most ``KB_INDEXING_WORKERS`` of them at a time."""

    slots = IndexingSlots()

    def handle_message(self, body, message):
        # Runs in its own greenthread (nameko's queue consumer spawns one per message): waiting here
        # blocks neither the consumer nor a worker.
        self.slots.slots.acquire()
        try:
            super().handle_message(body, message)
        except BaseException:
            self.slots.slots.release()
            raise

    def handle_message_processed(self, message, result=None, exc_info=None):
        try:
            super().handle_message_processed(message, result, exc_info)
        finally:
            self.slots.slots.release()


indexing_handler = IndexingHandler.decorator
"""``@indexing_handler("kb_search", "article_published")``: see :class:`IndexingHandler`."""
