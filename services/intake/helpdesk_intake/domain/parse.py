"""Parsing one mail, as the service and its parse worker both do; and the worker's process
(``python -m helpdesk_intake.domain.parse``): frames in on stdin, results out on stdout.

In: a frame per message, ``pickle((max_text, raw bytes))``; out, a frame per message as soon as it is
parsed: ``pickle(ParsedMail or Unparseable)``. No eventlet here: a plain process the service can kill. Its
address space is capped (``INTAKE_PARSE_MEMORY_MB``) so that a mail built to exhaust memory fails here,
not in the service.
"""
import os
import pickle
import struct
import sys
import time

from helpdesk_intake.domain import mime

_LENGTH = struct.Struct("!Q")
FAILPOINT = "intake.parse"


def parse_failpoint(raw):
    """Tests: ``HELPDESK_FAILPOINT=intake.parse:<hang|exit>:<marker>`` makes the parse of a message that
    contains ``<marker>`` hang for ever, or end the process at once (``os._exit``, as a crash does).
    Unset, it costs one dictionary lookup."""
    spec = os.environ.get("HELPDESK_FAILPOINT", "")
    if not spec.startswith(FAILPOINT + ":"):
        return
    _, mode, marker = spec.split(":", 2)
    if marker.encode() not in raw:
        return
    if mode == "exit":
        os._exit(86)
    while mode == "hang":
        time.sleep(3600)


class ParseFailure:
    """A message the worker could not finish: it took too long or the worker died on it."""

    def __init__(self, reason):
        self.reason = reason

    def __repr__(self):
        return f"ParseFailure({self.reason!r})"


def in_process(raws, max_text):
    """Parse here, without a budget (``MAIL_PARSE_WORKER=false``)."""
    return [parse_one(raw, max_text) for raw in raws]


def parse_one(raw, max_text):
    """A ``ParsedMail``, or the :class:`mime.Unparseable` (returned, not raised) of one message."""
    parse_failpoint(raw)
    try:
        return mime.parse(raw, max_text=max_text)
    except mime.Unparseable as error:
        return error
    except RecursionError as error:  # a structure nested too deep for the stdlib parser
        return mime.Unparseable(f"the message is nested too deeply: {error}")
    except MemoryError:
        return mime.Unparseable("the message needs more memory than parsing is allowed")


def write_frame(stream, payload):
    stream.write(_LENGTH.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def read_exactly(stream, size):
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the parse worker closed its pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(stream):
    (size,) = _LENGTH.unpack(read_exactly(stream, _LENGTH.size))
    return read_exactly(stream, size)


def main():
    try:
        import resource

        limit = int(os.environ.get("INTAKE_PARSE_MEMORY_MB") or 0) * 1024 * 1024
        if limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            frame = read_frame(source)
        except EOFError:
            return
        max_text, raw = pickle.loads(frame)
        write_frame(sink, pickle.dumps(parse_one(raw, max_text), protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    main()
