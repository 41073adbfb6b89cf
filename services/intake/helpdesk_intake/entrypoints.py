"""The intake service's own entrypoints: the mailbox poll (woken by IMAP IDLE) and the chat sweep, timers
whose intervals come from config."""
import time

import eventlet
from eventlet.event import Event
from nameko.messaging import QueueConsumer
from nameko.timer import Timer

from .domain.chat import ChatSettings
from .idle import IdleWatcher
from .settings import Settings


class MailboxPoll(Timer):
    """A timer whose interval comes from config (``IMAP_POLL_INTERVAL``); never fires while the previous
    poll still runs. Without mailboxes it does not run at all.

    With ``IMAP_IDLE`` (the default) it also keeps an IDLE watcher per mailbox (``intake/idle.py``), as
    greenthreads of the container, which wake it when mail arrives: the poll runs at once (after the
    running one, never beside it; wakes during a poll make one more poll), and the timer stays the fallback.

    nameko starts all of a container's extensions at once, so a poll could send its ``create_tickets``
    before the queue consumer had declared the RPC reply queue: the answer was dropped as unroutable and
    the poll waited ``IMAP_POLL_TIMEOUT`` for it (one test run in four with mail waiting at start-up, more
    under load). The first poll therefore waits until the container's queue consumer is consuming, and
    then runs at once."""

    def __init__(self, **kwargs):
        # Eager: mail that waited while intake was down is read at start-up, not one interval later.
        super().__init__(interval=5, eager=True, **kwargs)
        self.watchers, self.watcher_threads = [], []
        self._woken = Event()

    def setup(self):
        settings = Settings.from_config(self.container.config)
        self.interval = settings.imap_poll_interval
        self.enabled = bool(settings.mailboxes)
        if settings.imap_idle:
            self.watchers = [IdleWatcher(config, self.wake) for config in settings.mailboxes]

    def start(self):
        if self.enabled:
            super().start()
            self.watcher_threads = [self.container.spawn_managed_thread(watcher.run) for watcher in self.watchers]

    def stop(self):
        self._stop_watchers()
        if self.enabled:
            self.should_stop.send(True)
            self.wake()
            self.gt.wait()

    def kill(self):
        self._stop_watchers()
        if self.enabled and self.gt is not None:
            super().kill()

    def _stop_watchers(self):
        for watcher in self.watchers:
            watcher.stop()
        for thread in self.watcher_threads:
            thread.kill()

    def wake(self):
        """Poll now (or right after the running poll): a watcher saw mail arrive."""
        if not self._woken.ready():
            self._woken.send(True)

    def _run(self):
        for extension in self.container.subextensions:
            if isinstance(extension, QueueConsumer):
                extension._consumers_ready.wait()  # nameko 2.14 (pinned) has no public "ready" signal
        # nameko's Timer loop (fixed rate from the start, eager), whose sleep a wake cuts short.
        started, ticks = time.monotonic(), 0
        while True:
            with eventlet.Timeout(max(started + ticks * self.interval - time.monotonic(), 0), False):
                self._woken.wait()
            if self.should_stop.ready():
                break
            self._woken = Event()  # a wake from now on (during the poll) makes one more poll after it
            if time.monotonic() >= started + ticks * self.interval:
                ticks += 1
            self.handle_timer_tick()
            self.worker_complete.wait()
            self.worker_complete.reset()


mailbox_poll = MailboxPoll.decorator


class ChatSweep(Timer):
    """Every ``CHAT_SWEEP_INTERVAL`` seconds: chats nobody answered in time become tickets, and
    transcripts that did not reach their ticket are retried."""

    def __init__(self, **kwargs):
        super().__init__(interval=5, **kwargs)

    def setup(self):
        self.interval = ChatSettings.from_config(self.container.config).sweep_interval


chat_sweep = ChatSweep.decorator


class RetentionSweep(Timer):
    """Every ``RETENTION_SWEEP_INTERVAL`` seconds: mail text and attachments past their retention are purged
    (``personal_data.purge_expired``)."""

    def __init__(self, **kwargs):
        super().__init__(interval=3600, **kwargs)

    def setup(self):
        self.interval = Settings.from_config(self.container.config).retention_interval


retention_sweep = RetentionSweep.decorator
