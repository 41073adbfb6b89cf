"""Parsing mail with a time budget, in a worker process that can be stopped (eventlet's side: the pipes; the
service gives it to the ingestor as its parser). The parsing itself and the child's program: ``parse.py``.

Parsing is CPU-bound: under eventlet nothing interrupts it (an ``eventlet.Timeout`` fires only when the
parsing greenthread yields, which it never does), so one crafted mail could hold the whole service. The
poller therefore hands each batch to a child process (``python -m helpdesk_intake.domain.parse``, kept between
batches) over a pipe, and reads the results back one message at a time, each within ``timeout``
seconds. A message that takes longer, or kills the child (a crash, the memory limit), gets a
:class:`ParseFailure`; the child is killed and a fresh one parses the rest of the batch.

Why a pipe to a child of our own rather than ``multiprocessing``/``concurrent.futures``: their pools
are driven by threads and locks that eventlet's monkey-patching makes green, and the one thing needed
here, killing the worker in the middle of a task and carrying on, is what they do worst (a broken
pool). A green pipe waits without blocking the service, and ``kill()`` is all it takes to stop a parse.

Cost: the raw bytes are written to the child, the parsed mail (pickled) read back; the child parses
while the service does its database and RPC work, so for ordinary mail the rate holds (see the README).
"""
import logging
import os
import pickle
import signal
import sys

from eventlet import patcher, tpool
from eventlet.green import subprocess
from eventlet.semaphore import Semaphore

from .domain.parse import _LENGTH, ParseFailure

# The real modules, for the native thread that talks to the worker (their green twins need a hub).
_os = patcher.original("os")
_select = patcher.original("select")
time = patcher.original("time")

log = logging.getLogger(__name__)


class ParseWorker:
    """One child process that parses batches; replaced when it overruns its budget or dies.

    One batch at a time (a green lock): the poller parses one batch at a time anyway, and an operator's
    retry waits its turn rather than starting a second child."""

    def __init__(self, timeout, max_text, memory_mb=1024):
        self.timeout = timeout
        self.max_text = max_text
        self.memory_mb = memory_mb
        self.process = None
        self._lock = Semaphore()

    def _start(self):
        env = dict(os.environ, INTAKE_PARSE_MEMORY_MB=str(self.memory_mb), PYTHONWARNINGS="ignore")
        self.process = subprocess.Popen([sys.executable, "-m", "helpdesk_intake.domain.parse"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env, close_fds=True)
        return self.process

    def warm(self):
        """Start the child now (the service's start), so that the first poll does not wait for its start-up
        (a Python process importing the parser: 50-300 ms)."""
        with self._lock:
            if self.process is None or self.process.poll() is not None:
                self._start()

    def stop(self):
        """Kill the child (never waits on a parse)."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            process.send_signal(signal.SIGKILL)
        except OSError:
            pass
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except Exception:
                pass
        try:
            process.wait()
        except Exception:
            pass

    def parse(self, raws):
        """One result per raw message, in order: a ``ParsedMail``, a :class:`mime.Unparseable`, or a
        :class:`ParseFailure` (over budget, or the worker died on it)."""
        with self._lock:
            results = []
            while len(results) < len(raws):
                results.extend(self._run(raws[len(results):]))
            return results

    def _run(self, raws):
        """Results for a prefix of ``raws`` (at least one): up to the first message the worker failed on."""
        process = self.process if self.process is not None and self.process.poll() is None else self._start()
        frames = [pickle.dumps((self.max_text, raw), protocol=pickle.HIGHEST_PROTOCOL) for raw in raws]
        try:
            # The pipe work runs in a native thread: through eventlet's green pipes every read and write
            # went through the hub (four trampolines a message, 60 us of the service's CPU a mail).
            payloads, failure = tpool.execute(exchange, process.stdin.fileno(), process.stdout.fileno(), frames,
                                              self.timeout)
        except BaseException:
            self.stop()  # the poll was abandoned (its own timeout, a kill): never leave a parse running
            raise
        results = [pickle.loads(payload) for payload in payloads]
        if failure is None:
            return results
        if failure == "timeout":
            failure = ParseFailure(f"parsing took over {self.timeout:g}s (stopped)")
        else:
            try:
                code = process.wait(timeout=2)
            except Exception:
                code = None
            failure = ParseFailure(f"the parse worker died (exit code {code})" if code is not None else
                                   f"the parse worker failed: {failure}")
        log.warning("parse worker: %s; restarting it", failure.reason)
        self.stop()
        return results + [failure]


def exchange(in_fd, out_fd, frames, timeout):
    """In a native thread (no eventlet here): write ``frames`` to the worker while reading its result
    frames, one per message, each within ``timeout`` seconds of the one before. Returns ``(payloads,
    failure)``: ``failure`` is None when every result came, "timeout", or what ended the pipe."""
    _os.set_blocking(in_fd, False)
    _os.set_blocking(out_fd, False)
    poller = _select.poll()
    poller.register(out_fd, _select.POLLIN)
    writing = bool(frames)
    if writing:
        poller.register(in_fd, _select.POLLOUT)
    queue = iter(frames)
    current, offset = b"", 0
    received, payloads = bytearray(), []
    deadline = time.monotonic() + timeout
    while len(payloads) < len(frames):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return payloads, "timeout"
        for fd, event in poller.poll(remaining * 1000):
            if fd == in_fd and writing:
                try:
                    while True:
                        if offset >= len(current):
                            frame = next(queue, None)
                            if frame is None:
                                writing = False
                                poller.unregister(in_fd)
                                break
                            current, offset = _LENGTH.pack(len(frame)) + frame, 0
                        offset += _os.write(in_fd, current[offset:offset + (1 << 20)])
                except BlockingIOError:
                    pass
                except OSError:  # the worker is gone: what it wrote is read below, then the pipe's end
                    writing = False
                    poller.unregister(in_fd)
            elif fd == out_fd:
                try:
                    chunk = _os.read(out_fd, 1 << 20)
                except BlockingIOError:
                    continue
                if not chunk:
                    return payloads, "EOFError: the worker closed its pipe"
                received += chunk
                while len(received) >= _LENGTH.size:
                    (size,) = _LENGTH.unpack_from(received)
                    if len(received) < _LENGTH.size + size:
                        break
                    payloads.append(bytes(received[_LENGTH.size:_LENGTH.size + size]))
                    del received[:_LENGTH.size + size]
                    deadline = time.monotonic() + timeout
    return payloads, None
