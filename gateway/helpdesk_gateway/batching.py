"""Coalesce concurrent calls of one RPC method into batches.

Sixteen clients opening tickets at once cost sixteen RPC round trips and sixteen commits one by one;
batched, they cost a few. A request thread hands its item to a lane and waits; a lane takes whatever
has queued up (at most ``max_batch``), makes one call, and hands each waiting thread its own answer or
error. A lone request is sent at once, so batching adds no delay when the platform is quiet.
"""
import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from helpdesk_common.errors import from_wire

from .rpc import ServiceUnavailable


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
        try:
            return answer.result(timeout=self.timeout)
        except FutureTimeout:
            answer.cancel()  # still queued: it is dropped, not sent after the caller gave up
            raise ServiceUnavailable(f"The {self.service} service did not answer within {self.timeout:g} s; "
                                     "retry shortly.", code="service_timeout") from None

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
            batch = [(item, answer) for item, answer in batch if answer.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                answers = self.pool.call(self.service, self.method, [item for item, _ in batch])
                if not isinstance(answers, list) or len(answers) != len(batch):
                    what = f"{len(answers)} results" if isinstance(answers, list) else type(answers).__name__
                    raise RuntimeError(f"{self.service}.{self.method} answered {what} for {len(batch)} items")
                outcomes = [(from_wire(result["error"]), None) if "error" in result else (None, result)
                            for result in answers]
            except Exception as error:  # the whole call failed: every waiting request learns why
                for _, answer in batch:
                    answer.set_exception(error)
                continue
            for (_, answer), (error, result) in zip(batch, outcomes):
                if error is not None:
                    answer.set_exception(error)
                else:
                    answer.set_result(result)
