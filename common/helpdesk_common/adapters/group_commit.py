"""Group commit for event handlers: the events that arrive together are handled in one transaction.

Each delivery still runs its own nameko worker (so ``reliable_handler`` acks, retries and parks it as
usual), but instead of committing alone the worker hands its event to the :class:`Collector` and
waits. One greenthread takes every event waiting (up to ``max_batch``), runs the batch function once,
and gives each worker its own result. When the batch fails, each of its events is run alone, so one
bad event fails only its own delivery (which is retried, then parked) and never its neighbours'.

No delay is added: a lone event is handled at once; a batch forms only from events that arrived while
the previous one was being written, which is exactly when batching pays. The broker's prefetch (the
service's ``max_workers``) bounds how many can wait.

Two options serve writes that fail as a whole rather than because of one event (a search index: its
lock, its server): without ``run_one`` a failed batch fails every event of it with the batch's error
(each is then retried on its own by its handler; rerunning them one by one would only repeat the
failing write per event), and ``linger`` waits that long before taking a batch, so the events of one
prefetch join it when a single write is expensive (an index commit).
"""
import eventlet
from eventlet.event import Event
from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Histogram

BATCH_SIZE = Histogram("helpdesk_group_commit_batch_size", "Events handled in one transaction", ["service"],
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
BATCH_FAILURES = Counter("helpdesk_group_commit_failures_total",
                         "Batches that failed and were handled event by event", ["service"])


class Collector(DependencyProvider):
    """Gives workers ``submit(item, run_batch, run_one)``: the result of ``run_one(item)``, computed as
    part of ``run_batch(items)`` (one result per item, in order) with whatever else is waiting.

    :param config_key: the config entry with the largest batch (default ``max_batch``).
    :param linger: seconds to wait before taking a batch (default 0: none).
    :param size: ``size(item)``, what an item counts towards ``max_batch`` (default 1 each): for items that
        are themselves lists of events. A batch always takes at least one item, however large.
    """

    def __init__(self, config_key=None, max_batch=200, linger=0.0, size=None):
        self.config_key, self.max_batch, self.linger, self.size = config_key, max_batch, linger, size
        self._waiting, self._wake, self._running = [], Event(), False

    def setup(self):
        if self.config_key and self.container.config.get(self.config_key) not in (None, ""):
            self.max_batch = max(1, int(self.container.config[self.config_key]))

    def start(self):
        self._running = True
        self.container.spawn_managed_thread(self._run)

    def stop(self):
        self._running = False
        self._nudge()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return self

    def submit(self, item, run_batch, run_one=None):
        """Called by a worker: blocks (green) until its item was handled; returns or raises as
        ``run_one(item)`` would. Without ``run_one``, raises the batch's error when the batch failed."""
        done = Event()
        self._waiting.append((item, run_batch, run_one, done))
        self._nudge()
        return done.wait()

    def handle(self, items, run_batch, run_one=None):
        """For a handler that receives events a batch at a time (``reliable_batch_handler``): the results
        of ``items``. Several are already a batch: ``run_batch(items)`` at once. A lone one (a batch split
        after a failure, a replay) goes through :meth:`submit`, so that lone ones arriving together still
        share a transaction."""
        if len(items) > 1:
            return run_batch(items)
        return [self.submit(items[0], run_batch, run_one)]

    def _nudge(self):
        if not self._wake.ready():
            self._wake.send(True)

    def _run(self):
        while self._running or self._waiting:
            self._wake.wait()
            self._wake = Event()
            eventlet.sleep(self.linger)  # workers spawned for deliveries that arrived together join this batch
            while self._waiting:
                taken = self._taken()
                batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
                BATCH_SIZE.labels(self.container.service_name).observe(len(batch))
                self._handle(batch)
                # Let the batch's workers finish (ack, reply) and the outbox relay, woken by the commit,
                # read what it wrote before the next batch holds the process: SQLite calls never yield,
                # so otherwise the events of this batch wait for the whole next one.
                eventlet.sleep(0)

    def _taken(self):
        """How many of the waiting items the next batch takes."""
        if self.size is None:
            return self.max_batch
        total = 0
        for count, (item, _, _, _) in enumerate(self._waiting):
            total += self.size(item)
            if total > self.max_batch and count:
                return count
        return len(self._waiting)

    def _handle(self, batch):
        run_batch = batch[0][1]
        try:
            results = run_batch([item for item, _, _, _ in batch])
        except Exception as error:  # one of them (or the database) failed: each on its own, to fail alone
            BATCH_FAILURES.labels(self.container.service_name).inc()
            if batch[0][2] is None:  # the write fails as a whole: each worker gets the batch's error
                for _, _, _, done in batch:
                    done.send_exception(error)
                return
            results = None
        if results is not None:
            for (_, _, _, done), result in zip(batch, results):
                done.send(result)
            return
        for item, _, run_one, done in batch:
            try:
                done.send(run_one(item))
            except Exception as error:  # handed to that worker: reliable_handler retries or parks it
                done.send_exception(error)
