"""The intake service's dependency providers: its settings, the parse worker, the mailboxes' connections,
the chat settings, and the sender of the outgoing mail queue."""
import logging

import eventlet
from eventlet.event import Event
from nameko.extensions import DependencyProvider
from sqlalchemy.orm import sessionmaker

from helpdesk_common.adapters.database import engine_for

from . import mailout, parse_worker
from .domain import parse
from .domain.chat import ChatSettings
from .imap import ImapMailbox
from .settings import Settings
from .storage import AttachmentStore

log = logging.getLogger(__name__)

DB_URL = "INTAKE_DB_URL"


class IntakeSettings(DependencyProvider):
    """The settings, parsed once at start-up: a bad mailbox URL stops the service at once."""

    def setup(self):
        self.settings = Settings.from_config(self.container.config)
        self.store = AttachmentStore(self.settings.attachments_dir)

    def get_dependency(self, worker_ctx):
        return self.settings


class Parser(DependencyProvider):
    """The parse worker (``parse_worker.py``): a child process kept for the service's life, killed and
    replaced when a message overruns ``MAIL_PARSE_TIMEOUT``. Injected as the function the ingestor
    parses with; ``MAIL_PARSE_WORKER=false`` parses in this process instead (no budget)."""

    def setup(self):
        settings = Settings.from_config(self.container.config)
        self.worker = parse_worker.ParseWorker(settings.parse_timeout, settings.mail_max_text) \
            if settings.parse_worker else None
        self.max_text = settings.mail_max_text
        self.polls = bool(settings.mailboxes)

    def start(self):
        if self.worker is not None and self.polls:  # else started at the first use (an operator's retry)
            self.container.spawn_managed_thread(self.worker.warm)

    def stop(self):
        if self.worker is not None:
            self.worker.stop()

    kill = stop

    def get_dependency(self, worker_ctx):
        if self.worker is None:
            return lambda raws: parse.in_process(raws, self.max_text)
        return self.worker.parse


class Mailboxes(DependencyProvider):
    """The IMAP connections of the configured mailboxes, kept open between polls."""

    def setup(self):
        settings = Settings.from_config(self.container.config)
        self.mailboxes = [ImapMailbox(config) for config in settings.mailboxes]

    def stop(self):
        for mailbox in self.mailboxes:
            mailbox.close()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.mailboxes


class ChatConfig(DependencyProvider):
    """The live chat's settings, read once at start-up."""

    def setup(self):
        self.settings = ChatSettings.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.settings


class OutgoingMailRelay(DependencyProvider):
    """Sends the queue of outgoing mail: woken after every worker (a handler may have queued mail),
    and polling as a fallback, so mail queued by a process that died is sent by the next one."""

    def setup(self):
        config = self.container.config
        self.settings = Settings.from_config(config)
        self.sender = mailout.MailSender(sessionmaker(engine_for(config[DB_URL]), expire_on_commit=False),
                                         self.settings)
        self._wake = Event()
        self._running = False
        self._thread = None

    def start(self):
        self._running = True
        self._thread = self.container.spawn_managed_thread(self._run)

    def stop(self):
        self._running = False
        self.wake()
        if self._thread is not None:
            with eventlet.Timeout(15, False):
                self._thread.wait()

    def kill(self):
        self._running = False
        self.wake()

    def wake(self):
        if not self._wake.ready():
            self._wake.send(True)

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        self.wake()

    def get_dependency(self, worker_ctx):
        return self

    def _run(self):
        while self._running:
            try:
                while self._running and self.sender.send_due():
                    pass
            except Exception:
                log.exception("sending outgoing mail failed; retrying shortly")
            with eventlet.Timeout(self.settings.mail_poll_interval, False):
                self._wake.wait()
            self._wake = Event()
