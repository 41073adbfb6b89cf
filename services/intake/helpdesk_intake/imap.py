"""Reading a mailbox over IMAP with the standard library's ``imaplib`` (green under eventlet).

Why imaplib and not a client library: the poller needs five commands (LOGIN, SELECT, UID SEARCH, UID
FETCH BODY.PEEK[], UID STORE/MOVE), imaplib speaks them on every server, ships with Python, and its
sockets are made green by the monkey-patch. A library (imapclient, aioimaplib) would add a pin and, for
the asyncio ones, a second event loop next to eventlet's.

Messages are fetched with ``BODY.PEEK[]`` so fetching never marks them read: only :meth:`mark_processed`
does, once their tickets exist.
"""
import imaplib
import logging
import re
import threading
from typing import NamedTuple

from .settings import tls_context

log = logging.getLogger(__name__)

_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
HEADER_BYTES = 65536


class Fetched(NamedTuple):
    """One fetched message: its bytes (only the header block when ``headers_only``) and its size on the server."""

    uid: str
    raw: bytes
    size: int = 0
    headers_only: bool = False


class MailboxError(Exception):
    pass


def open_mailbox(config, timeout, readonly=False):
    """A logged-in imaplib connection to ``config``'s mailbox with its folder selected (``readonly``:
    EXAMINE, which changes nothing on the server, not even the \\Recent flags)."""
    if config.scheme == "imaps":
        connection = imaplib.IMAP4_SSL(config.host, config.port, ssl_context=tls_context(config), timeout=timeout)
    else:
        connection = imaplib.IMAP4(config.host, config.port, timeout=timeout)
        if config.starttls:
            connection.starttls(ssl_context=tls_context(config))
    try:
        _check(config, connection.login(config.user, config.password), "LOGIN")
        _check(config, connection.select(_quote(config.folder), readonly=readonly), "SELECT")
    except BaseException:
        close_connection(connection)
        raise
    return connection


def _check(config, answer, what):
    status, data = answer
    if status != "OK":
        raise MailboxError(f"{what} failed on {config.name}: {data!r}")
    return data


class ImapMailbox:
    """One mailbox's connection, opened on first use and re-opened after a failure."""

    def __init__(self, config, timeout=30.0):
        self.config = config
        self.timeout = timeout
        self.connection = None
        self.can_move = False
        # The poller marks one batch while it fetches the next: one command at a time on the connection.
        # (A green lock under the service's monkey-patch.)
        self._lock = threading.RLock()

    def _check(self, answer, what):
        return _check(self.config, answer, what)

    def connect(self):
        connection = open_mailbox(self.config, self.timeout)
        self.can_move = "MOVE" in connection.capabilities
        self.connection = connection
        return connection

    def _conn(self):
        return self.connection or self.connect()

    def fetch_unprocessed(self, limit, after=None, max_bytes=None):
        """Up to ``limit`` unseen messages, oldest first: ``[Fetched]``; only UIDs above ``after`` when
        given (the poller's earlier batches are still unseen while it works on them). With ``max_bytes``,
        the sizes are asked first (``RFC822.SIZE``) and a larger message is fetched as its headers only
        (``BODY.PEEK[HEADER]``): a 2 GB mail is never read into memory."""
        with self._lock:
            connection = self._conn()
            try:
                try:
                    connection.noop()  # lets the server tell us about mail that arrived since the last poll
                except (imaplib.IMAP4.abort, OSError):
                    # The server dropped the connection kept since the last poll (restart, kick): a new one
                    # at once, or this poll (maybe woken by IDLE for new mail) fails and the mail waits.
                    self.close()
                    connection = self.connect()
                data = self._check(connection.uid("SEARCH", None, "UNSEEN"), "UID SEARCH")
                uids = sorted(u for u in {int(u) for u in (data[0] or b"").split()} if after is None or u > after)
                uids = uids[:limit]
                if not uids:
                    return []
                sizes, large = {}, set()
                if max_bytes:
                    answer = self._check(connection.uid("FETCH", uid_ranges(uids), "(UID RFC822.SIZE)"), "UID FETCH")
                    for entry in answer:
                        line = entry[0] if isinstance(entry, tuple) else entry
                        uid, size = _UID.search(line or b""), _SIZE.search(line or b"")
                        if uid and size:
                            sizes[int(uid.group(1))] = int(size.group(1))
                    large = {uid for uid in uids if sizes.get(uid, 0) > max_bytes}
                small = [uid for uid in uids if uid not in large]
                # One round trip for the batch, the UIDs as ranges ("1:200") to keep the command short.
                data = self._check(connection.uid("FETCH", uid_ranges(small), "(UID BODY.PEEK[])"),
                                   "UID FETCH") if small else []
                # The header block, at most its first 64 KB (a hostile one can be the whole size of the mail).
                heads = self._check(connection.uid("FETCH", uid_ranges(sorted(large)),
                                                   f"(UID BODY.PEEK[HEADER]<0.{HEADER_BYTES}>)"),
                                    "UID FETCH") if large else []
            except BaseException:
                self.close()
                raise
        messages = []
        for answer, headers_only in ((data, False), (heads, True)):
            for entry in answer:
                if isinstance(entry, tuple):
                    match = _UID.search(entry[0])
                    if match:
                        uid = int(match.group(1))
                        messages.append(Fetched(str(uid), entry[1], sizes.get(uid, len(entry[1])), headers_only))
        messages.sort(key=lambda m: int(m.uid))
        return messages

    def mark_processed(self, uids):
        """Flag ``uids`` \\Seen, then move them to the processed folder when one is configured."""
        if not uids:
            return
        with self._lock:
            self._mark(uid_ranges(sorted(int(u) for u in uids)))

    def _mark(self, uid_set):
        connection = self._conn()
        try:
            self._check(connection.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Seen)"), "UID STORE")
            folder = self.config.processed_folder
            if folder:
                if self.can_move:
                    self._check(connection.uid("MOVE", uid_set, _quote(folder)), "UID MOVE")
                else:
                    self._check(connection.uid("COPY", uid_set, _quote(folder)), "UID COPY")
                    self._check(connection.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE")
                    connection.expunge()
        except BaseException:
            self.close()
            raise

    def close(self):
        connection, self.connection = self.connection, None
        if connection is not None:
            close_connection(connection)


def uid_ranges(uids):
    """``[1, 2, 3, 7, 9, 10]`` -> ``"1:3,7,9:10"`` (sorted input)."""
    parts, start, previous = [], None, None
    for uid in uids:
        if previous is not None and uid == previous + 1:
            previous = uid
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}:{previous}")
        start = previous = uid
    if start is not None:
        parts.append(str(start) if start == previous else f"{start}:{previous}")
    return ",".join(parts)


def _quote(folder):
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def close_connection(connection):
    """Log out of an IMAP connection, or drop it when it is already broken (never raises)."""
    try:
        connection.logout()
    except Exception:  # already broken: dropping it is all that is left
        try:
            connection.shutdown()
        except Exception:
            pass
