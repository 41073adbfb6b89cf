"""Coalesce concurrent calls of one RPC method into batches.

Sixteen clients opening tickets at once cost sixteen RPC round trips and sixteen commits one by one;
batched, they cost a few. A request thread hands its item to a lane and waits; a lane takes whatever
has queued up (at most ``max_batch``), makes one call, and hands each waiting thread its own answer or
error. A lone request is sent at once, so batching adds no delay when the platform is quiet.
"""
import queue
import threading
from concurrent.futures import Future

from helpdesk_common.errors import from_wire


class BatchCaller:
    """Calls ``service.method(items)``, which answers one ``{"error": ...}`` or result per item."""

    def __init__(self, pool, service, method, max_batch=64, lanes=2, timeout=30.0):
        self.pool = pool
        self.service = service
        self.method = method
        self.max_batch = max_batch
        self.lanes = lanes
        self.timeout = timeout
        self._waiting = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()

    def call(self, item):
        """Send ``item`` in the next batch and return its answer (or raise its error)."""
        if not self._started:
            self._start()  # lazily: threads must be made in the process that serves (after gunicorn forks)
        answer = Future()
        self._waiting.put((item, answer))
        return answer.result(timeout=self.timeout)

    def _start(self):
        with self._lock:
            if not self._started:
                for number in range(self.lanes):
                    threading.Thread(target=self._lane, name=f"batch-{self.method}-{number}", daemon=True).start()
                self._started = True

    def _lane(self):
        while True:
            batch = [self._waiting.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            try:
                answers = self.pool.call(self.service, self.method, [item for item, _ in batch])
            except Exception as error:  # the whole call failed: every waiting request learns why
                for _, answer in batch:
                    answer.set_exception(error)
                continue
            for (_, answer), result in zip(batch, answers):
                if "error" in result:
                    answer.set_exception(from_wire(result["error"]))
                else:
                    answer.set_result(result)
