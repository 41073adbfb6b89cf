"""Parked events: the ones a handler gave up on, kept for an operator to inspect and replay.

A :func:`~helpdesk_common.consumer.reliable_handler` that cannot process an event (its retries are
used up, or it raised an expected, non-retryable error) publishes it, unchanged, to the durable queue
``helpdesk.parked``, with headers naming the handler, its queue, the attempts and the last error.
Nothing else consumes that queue: the events wait there until an operator replays them.

One shared queue rather than one per handler (``parked.<service>.<method>``):

- an operator has one place to look, with plain AMQP: listing every handler's queues would need the
  management API, or knowledge of every service's handlers;
- one alert covers the whole platform (depth of ``helpdesk.parked`` > 0), and the per-handler breakdown
  is in each service's metrics (``helpdesk_consumer_parked_total{service,handler,reason}``) and in the
  ``x-helpdesk-handler`` header that :func:`list_parked` and the CLI filter on;
- parking is the exception, so the queue stays small and scanning it whole is cheap.

It is a quorum queue (:mod:`.queues`: it outlives a broker node), with a delivery limit far beyond any
use (``queues.DELIVERY_LIMIT``): a quorum queue counts every return to the queue as a delivery, and each
listing returns every message it read; RabbitMQ 4 would otherwise drop a message after 20 of them.

Reading without losing: AMQP 0.9.1 has no "browse". :func:`list_parked` takes each message with
``basic.get`` *without* acknowledging it, reads it, and closes its channel at the end, which returns
every message it held to the queue, in its original order; if the tool dies half-way the broker does
the same when the connection drops. While a listing runs, the messages it holds are invisible to
another listing or replay (each sees only what the other is not holding); both are quick. A stream
queue could be browsed by offset, but a replayed event could not then be removed from it.

Replaying publishes the event (same body and properties, the attempt count reset) back to *its
handler's own queue* through the default exchange, never to the source's topic exchange, so the other
handlers of that event do not see it again. The parked copy is acknowledged only once the broker has
confirmed the replayed one; a crash in between leaves both, and the handler's idempotency absorbs the
repeat. If the handler's queue no longer exists (the handler was renamed or removed), the publish is
returned as unroutable and the event stays parked.

Usage: ``helpdesk-parked [--amqp-uri URI] list|count|replay ...`` (see :func:`main`).
"""
import argparse
import json
import sys
from dataclasses import asdict, dataclass, field

from amqp.exceptions import NotFound
from kombu import Connection, Producer, Queue

from .config import amqp_uri as configured_amqp_uri
from .queues import quorum

PARKED_QUEUE = "helpdesk.parked"

# Headers of a failed event, set by the consumer when it retries or parks it.
ATTEMPTS = "x-helpdesk-attempts"            # failed deliveries so far
HANDLER = "x-helpdesk-handler"              # "<service>.<method>"
QUEUE = "x-helpdesk-queue"                  # the handler's queue, where a replay sends the event
EXCHANGE = "x-helpdesk-exchange"            # where the event was first published ...
ROUTING_KEY = "x-helpdesk-routing-key"      # ... and with which routing key (the event type)
ERROR = "x-helpdesk-error"                  # "<ExceptionClass>: <message>" of the last failure
ERROR_TYPE = "x-helpdesk-error-type"        # dotted path of the exception class
TRACEBACK = "x-helpdesk-traceback"          # the end of the last traceback
FIRST_FAILED_AT = "x-helpdesk-first-failed-at"
FAILED_AT = "x-helpdesk-failed-at"
PARKED_AT = "x-helpdesk-parked-at"
PARKED_REASON = "x-helpdesk-parked-reason"  # "exhausted" (retries used up) or "non_retryable"
REPLAYS = "x-helpdesk-replays"              # how many times an operator replayed it

FAILURE_HEADERS = (ATTEMPTS, HANDLER, QUEUE, ERROR, ERROR_TYPE, TRACEBACK, FIRST_FAILED_AT, FAILED_AT,
                   PARKED_AT, PARKED_REASON)
"""What a replay clears: the event starts afresh, with a full set of attempts."""

BROKER_HEADER_PREFIXES = ("x-death", "x-first-death-", "x-last-death-")
"""Headers RabbitMQ adds when it dead-letters a message; never copied into a republished message."""

PUBLISH_TIMEOUT = 10.0
"""Seconds to wait for the broker to confirm a publish."""


class Unroutable(Exception):
    """The broker took the message but no queue did: the target queue does not exist."""


def parked_queue():
    """The declaration every process uses for the parking queue (it must be identical everywhere)."""
    return quorum(Queue(PARKED_QUEUE, durable=True, auto_delete=False))


def connect(amqp_uri, **kwargs):
    """A kombu connection whose channels use publisher confirms (what :func:`publish_confirmed` needs)."""
    transport_options = dict(kwargs.pop("transport_options", None) or {}, confirm_publish=True)
    kwargs.setdefault("connect_timeout", 10)
    return Connection(amqp_uri, transport_options=transport_options, **kwargs)


def publish_confirmed(connection, body, *, routing_key, headers, content_type, content_encoding,
                      declare=(), timeout=PUBLISH_TIMEOUT, **properties):
    """Publish raw ``body`` to the queue ``routing_key`` (default exchange); return once it is confirmed.

    The message is persistent and mandatory: if no queue takes it, :class:`Unroutable` is raised rather
    than the broker silently dropping it. ``declare`` entities are declared first (idempotent). Uses a
    channel of its own, closed afterwards, so no confirm or return is left pending for another publish.
    """
    if not connection.transport_options.get("confirm_publish"):
        raise ValueError("publish_confirmed needs a connection with confirm_publish (see connect())")
    returned = []
    channel = connection.channel()
    try:
        for entity in declare:
            entity(channel).declare()
        # With an on_return callback, py-amqp hands a basic.return to us instead of raising a bare
        # ChannelError from the middle of the wait for the confirm; the wait then ends normally.
        producer = Producer(channel, auto_declare=False,  # the default exchange
                            on_return=lambda exc, exchange, key, message: returned.append(exc))
        producer.publish(body, routing_key=routing_key, headers=headers, content_type=content_type,
                         content_encoding=content_encoding, delivery_mode=2, mandatory=True,
                         timeout=timeout, confirm_timeout=timeout, **properties)
    finally:
        connection.maybe_close_channel(channel)
    if returned:  # RabbitMQ sends basic.return before basic.ack, so it has arrived by now
        raise Unroutable(f"no queue {routing_key!r} took the message ({returned[0]})")


def copied_properties(message):
    """The properties of ``message`` a republished copy keeps (not ``expiration``, not ``user_id``)."""
    props = message.properties
    return {key: props[key] for key in ("message_id", "type", "correlation_id", "timestamp", "app_id")
            if props.get(key) is not None}


def without_broker_headers(headers):
    return {key: value for key, value in (headers or {}).items()
            if not key.startswith(BROKER_HEADER_PREFIXES)}


@dataclass
class ParkedMessage:
    """One parked event, as an operator sees it."""

    message_id: str
    handler: str
    queue: str
    event_type: str
    attempts: int
    reason: str
    error: str
    error_type: str
    parked_at: str
    replays: int
    body: object
    headers: dict = field(repr=False)
    traceback: str = field(default="", repr=False)

    @classmethod
    def from_message(cls, message):
        headers = dict(message.headers or {})
        try:
            body = json.loads(message.body)
        except (TypeError, ValueError):
            body = _text(message.body)
        return cls(
            message_id=message.properties.get("message_id") or "",
            handler=_text(headers.get(HANDLER)),
            queue=_text(headers.get(QUEUE)),
            event_type=_text(headers.get(ROUTING_KEY) or message.properties.get("type")),
            attempts=int(headers.get(ATTEMPTS) or 0),
            reason=_text(headers.get(PARKED_REASON)),
            error=_text(headers.get(ERROR)),
            error_type=_text(headers.get(ERROR_TYPE)),
            parked_at=_text(headers.get(PARKED_AT)),
            replays=int(headers.get(REPLAYS) or 0),
            body=body,
            headers=headers,
            traceback=_text(headers.get(TRACEBACK)),
        )

    def to_dict(self):
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass
class ReplayResult:
    replayed: list = field(default_factory=list)   # ParkedMessage, now back in their handlers' queues
    failed: list = field(default_factory=list)     # (ParkedMessage, reason): still parked


def _text(value):
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _Held:
    """Takes parked messages one by one without acknowledging them; closing returns the rest."""

    def __init__(self, connection):
        self.connection = connection
        self.depth = _depth(connection)  # 0 when no handler ever parked anything here
        self.channel = connection.channel()
        self.queue = parked_queue()(self.channel)

    def __iter__(self):
        # At most the messages present at the start: one parked again meanwhile (a replay that failed at
        # once) is not taken a second time, and the loop ends even while handlers keep parking.
        for _ in range(self.depth):
            message = self.queue.get(no_ack=False)
            if message is None:
                return
            yield message

    def close(self):
        # Closing the channel returns every unacknowledged message to the queue, in its original order.
        self.connection.maybe_close_channel(self.channel)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _depth(connection):
    """Messages ready in the parking queue, without creating it: an inspection leaves no trace."""
    channel = connection.channel()
    try:
        return parked_queue()(channel).queue_declare(passive=True).message_count
    except NotFound:  # the broker closed that channel; the connection is fine
        return 0
    finally:
        connection.maybe_close_channel(channel)


def _matches(parked, handler):
    return handler is None or parked.handler == handler


def count_parked(amqp_uri, handler=None):
    """How many events are parked (for ``handler`` only, "<service>.<method>", when given)."""
    with Connection(amqp_uri, connect_timeout=10) as connection:
        if handler is None:
            return _depth(connection)
        with _Held(connection) as held:
            return sum(1 for message in held if _matches(ParkedMessage.from_message(message), handler))


def list_parked(amqp_uri, handler=None, limit=None):
    """The parked events, oldest first, left in place (see the module's notes on reading)."""
    found = []
    with Connection(amqp_uri, connect_timeout=10) as connection, _Held(connection) as held:
        for message in held:
            parked = ParkedMessage.from_message(message)
            if _matches(parked, handler):
                found.append(parked)
                if limit is not None and len(found) >= limit:
                    break
    return found


def _replay(amqp_uri, select):
    result = ReplayResult()
    with connect(amqp_uri) as connection, _Held(connection) as held:
        for message in held:
            parked = ParkedMessage.from_message(message)
            if not select(parked):
                continue
            if not parked.queue:
                result.failed.append((parked, f"no {QUEUE} header: not parked by a reliable handler"))
                continue
            headers = {key: value for key, value in without_broker_headers(message.headers).items()
                       if key not in FAILURE_HEADERS}
            headers[REPLAYS] = parked.replays + 1
            try:
                publish_confirmed(connection, message.body, routing_key=parked.queue, headers=headers,
                                  content_type=message.content_type,
                                  content_encoding=message.content_encoding, **copied_properties(message))
            except Unroutable as exc:
                result.failed.append((parked, str(exc)))
                continue
            message.ack()  # only now that the copy is safely in the handler's queue
            result.replayed.append(parked)
    return result


def replay(amqp_uri, message_id, handler=None):
    """Send the parked event(s) with this message id back to their handler's queue.

    The same event parked by two handlers is two parked messages: both are replayed, each to its own
    handler, unless ``handler`` ("<service>.<method>") picks one.
    """
    return _replay(amqp_uri, lambda parked: parked.message_id == message_id and _matches(parked, handler))


def replay_all(amqp_uri, handler=None):
    """Send every parked event (of ``handler`` only, when given) back to its handler's queue."""
    return _replay(amqp_uri, lambda parked: _matches(parked, handler))


def _print_table(parked_messages, out):
    columns = ("message_id", "handler", "event_type", "attempts", "reason", "parked_at", "error")
    rows = [[str(getattr(parked, column)) for column in columns] for parked in parked_messages]
    rows = [[cell if len(cell) <= 80 else cell[:77] + "..." for cell in row] for row in rows]
    widths = [max([len(column)] + [len(row[i]) for row in rows]) for i, column in enumerate(columns)]
    for row in [list(columns)] + rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n")


def main(argv=None, out=None):
    """``helpdesk-parked``: inspect and replay parked events.

    ::

        helpdesk-parked [--amqp-uri URI] list [--handler SERVICE.METHOD] [--limit N] [--json]
        helpdesk-parked [--amqp-uri URI] count [--handler SERVICE.METHOD]
        helpdesk-parked [--amqp-uri URI] replay (MESSAGE_ID ... | --all) [--handler SERVICE.METHOD]

    Exit status: 0 on success; 1 when a replay left an event parked (its handler's queue is gone) or a
    given message id was not parked.
    """
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="helpdesk-parked", description="Inspect and replay parked events.")
    parser.add_argument("--amqp-uri", default=configured_amqp_uri(),
                        help="broker, with its vhost (default: HELPDESK_AMQP_URI or %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="show parked events, leaving them parked")
    listing.add_argument("--handler", help="only this handler's events: SERVICE.METHOD")
    listing.add_argument("--limit", type=int, help="show at most this many")
    listing.add_argument("--json", action="store_true",
                         help="one JSON object per line, with body and headers")

    counting = commands.add_parser("count", help="how many events are parked")
    counting.add_argument("--handler", help="only this handler's events: SERVICE.METHOD")

    replaying = commands.add_parser("replay", help="send parked events back to their handler's queue")
    replaying.add_argument("message_ids", nargs="*", metavar="MESSAGE_ID", help="event id(s) to replay")
    replaying.add_argument("--all", action="store_true", help="replay every parked event (of --handler)")
    replaying.add_argument("--handler", help="only this handler's events: SERVICE.METHOD")

    args = parser.parse_args(argv)

    if args.command == "list":
        parked = list_parked(args.amqp_uri, handler=args.handler, limit=args.limit)
        if args.json:
            for item in parked:
                out.write(json.dumps(item.to_dict()) + "\n")
        elif parked:
            _print_table(parked, out)
        else:
            out.write("no parked events\n")
        return 0

    if args.command == "count":
        out.write(f"{count_parked(args.amqp_uri, handler=args.handler)}\n")
        return 0

    if bool(args.message_ids) == bool(args.all):
        parser.error("replay needs either message ids or --all")
    if args.all:
        results = [replay_all(args.amqp_uri, handler=args.handler)]
    else:
        results = [replay(args.amqp_uri, message_id, handler=args.handler) for message_id in args.message_ids]
    status = 0
    for message_id, result in zip(args.message_ids or [None], results):
        for parked in result.replayed:
            out.write(f"replayed {parked.message_id} to {parked.queue}\n")
        for parked, reason in result.failed:
            out.write(f"still parked {parked.message_id} ({parked.handler}): {reason}\n")
            status = 1
        if message_id is not None and not result.replayed and not result.failed:
            out.write(f"not parked: {message_id}\n")
            status = 1
    if args.all and not results[0].replayed and not results[0].failed:
        out.write("nothing to replay\n")
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
