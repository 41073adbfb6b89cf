"""IMAP IDLE (RFC 2177): a second connection per mailbox that waits for the server to announce new mail.

The watcher only signals: when the server sends an untagged ``EXISTS`` (or a non-zero ``RECENT``) it calls
``on_new_mail``, and the poller's ordinary drain does the fetching on its own connection. Nothing depends
on the watcher for safety: the timer poll keeps running, so a watcher that is down costs speed, never mail.

Python 3.11's imaplib has no ``idle()``: :class:`IdleSession` lets imaplib connect, log in and EXAMINE the
folder (:func:`helpdesk_intake.imap.open_mailbox`), then speaks IDLE itself over the same connection (tagged
``IDLE``, the ``+`` continuation, untagged lines, ``DONE`` every 20 minutes, the tagged answer, ``IDLE``
again). No nameko here; eventlet (green sockets under the service's monkey-patch) bounds the waits, and a
watcher is one greenthread.
"""
import itertools
import logging
import re
import socket

import eventlet
from eventlet.event import Event

from .imap import MailboxError, close_connection, open_mailbox

log = logging.getLogger(__name__)

# RFC 2177: a client should re-issue IDLE at least every 29 minutes, or the server may log it out.
IDLE_REFRESH = 20 * 60
# Seconds between reconnection attempts after a failure, the last one repeated.
RECONNECT_BACKOFF = (1, 2, 5, 15, 30, 60)

_NEWS = re.compile(rb"^\* (\d+) (EXISTS|RECENT)\s*$", re.IGNORECASE)
_tags = itertools.count(1)


def announces_mail(line):
    """Whether an untagged response line tells of new mail: ``* n EXISTS``, or ``* n RECENT`` with n > 0."""
    match = _NEWS.match(line)
    return bool(match) and (match.group(2).upper() == b"EXISTS" or int(match.group(1)) > 0)


class IdleSession:
    """One read-only connection to a mailbox, for IDLE rounds (:meth:`idle`)."""

    def __init__(self, connection, config, timeout):
        self.connection = connection
        self.config = config
        self.timeout = timeout

    @classmethod
    def open(cls, config, timeout=30.0):
        """Connect, log in and EXAMINE ``config``'s folder; every answer is awaited ``timeout`` s at most."""
        return cls(open_mailbox(config, timeout, readonly=True), config, timeout)

    @property
    def supported(self):
        """Whether the server announces IDLE in its CAPABILITY (asked after login: it may differ before)."""
        status, data = self.connection.capability()
        return status == "OK" and b"IDLE" in (data[0] or b"").upper().split()

    def idle(self, seconds, on_new_mail):
        """One IDLE round of ``seconds``: ``on_new_mail()`` as soon as the server announces new mail, each
        time (the round goes on: staying in IDLE costs nothing between arrivals). Returns how many
        announcements there were.

        The round ends with ``DONE`` and the server's tagged answer, so the session can start the next one.
        A server that does not answer within the session's timeout raises (``socket.timeout``)."""
        tag = f"HDI{next(_tags)}".encode()
        self._send(tag + b" IDLE")
        news = 0
        while True:
            line = self._readline()
            if line.startswith(b"+"):
                break
            if line.startswith(tag + b" "):
                raise MailboxError(f"IDLE refused by {self.config.name}: {line.strip()!r}")
            news += self._announce(line, on_new_mail)
        news += self._listen(seconds, on_new_mail)
        self._send(b"DONE")
        while True:
            line = self._readline()
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].upper().startswith(b"OK"):
                    raise MailboxError(f"IDLE ended badly on {self.config.name}: {line.strip()!r}")
                return news
            news += self._announce(line, on_new_mail)

    def _listen(self, seconds, on_new_mail):
        # The socket's timeout would end the wait after `timeout` s of silence, and a socket timeout inside
        # imaplib's buffered reader leaves the connection unusable: the wait is bounded by eventlet instead.
        sock = self.connection.sock
        sock.settimeout(None)
        refresh, news = eventlet.Timeout(seconds), 0
        try:
            while True:
                news += self._announce(self._readline(), on_new_mail)
        except eventlet.Timeout as expired:
            if expired is not refresh:
                raise
            # A line the server was sending as the refresh struck may be cut: an announcement lost so is mail
            # the timer poll picks up.
            return news
        finally:
            refresh.cancel()
            sock.settimeout(self.timeout)

    @staticmethod
    def _announce(line, on_new_mail):
        if announces_mail(line):
            on_new_mail()
            return 1
        return 0

    def interrupt(self):
        """Make a read blocked in :meth:`idle` fail at once (from another greenthread): for shutdown."""
        try:
            self.connection.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed

    def close(self):
        """Log out (or drop the connection when it is broken)."""
        close_connection(self.connection)

    def _send(self, line):
        self.connection.send(line + b"\r\n")

    def _readline(self):
        try:
            line = self.connection.readline()
        except socket.timeout:
            raise
        except (OSError, ValueError) as error:  # shut by interrupt(): a TLS socket says so with a ValueError
            raise MailboxError(f"{self.config.name} closed the IDLE connection ({error})") from error
        if not line:
            raise MailboxError(f"{self.config.name} closed the IDLE connection")
        return line


class IdleWatcher:
    """Keeps one mailbox in IDLE and calls ``on_new_mail()`` when mail arrives; :meth:`run` is its loop.

    ``on_new_mail`` is also called after every (re)connection, for mail that came while nothing watched.
    Errors are logged and the connection retried after ``backoff`` seconds; a server without IDLE ends the
    loop (the timer poll alone reads that mailbox, as before IDLE existed)."""

    def __init__(self, config, on_new_mail, refresh=IDLE_REFRESH, backoff=RECONNECT_BACKOFF, timeout=30.0):
        self.config = config
        self.on_new_mail = on_new_mail
        self.refresh = refresh
        self.backoff = backoff
        self.timeout = timeout
        self.session = None
        self._stopping = Event()

    @property
    def stopping(self):
        return self._stopping.ready()

    def run(self):
        """Watch until :meth:`stop`; never raises (it runs as a greenthread of the service)."""
        failures = 0
        while not self.stopping:
            try:
                self.session = IdleSession.open(self.config, self.timeout)
                if not self.session.supported:
                    log.info("%s does not announce IDLE: it is read at every poll only", self.config.name)
                    return
                self.on_new_mail()
                while not self.stopping:
                    self.session.idle(self.refresh, self.on_new_mail)
                    failures = 0
            except Exception as error:
                if self.stopping:
                    return
                delay = self.backoff[min(failures, len(self.backoff) - 1)]
                failures += 1
                log.warning("IDLE on %s failed (%s); reconnecting in %ss, polling meanwhile", self.config.name,
                            error, delay)
                self._close()
                with eventlet.Timeout(delay, False):
                    self._stopping.wait()
            finally:
                self._close()

    def stop(self):
        """End :meth:`run` promptly: its blocked read fails at once."""
        if not self._stopping.ready():
            self._stopping.send(True)
        session = self.session
        if session is not None:
            session.interrupt()

    def _close(self):
        session, self.session = self.session, None
        if session is not None:
            session.close()
