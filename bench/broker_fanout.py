"""What the broker spends to carry one event to the platform's consumers: one message per event (today's
stream) against many events in one message (a batched stream), on the machine's RabbitMQ.

A throwaway virtual host; ``--queues`` durable queues bound to one topic exchange, each drained by its own
consumer (kombu, prefetch 200, one ack per message), as the platform's handlers drain theirs. The outbox's
own publisher (``helpdesk_common.outbox.ConfirmedPublisher``: persistent, confirmed) sends ``--events``
copies of a real ``ticket_created`` envelope, either one per message or ``--batch`` per message. The broker's
CPU (``beam.smp`` from ``/proc``, from before the consumers start to after the last delivery) is divided by
the events carried. The one-per-message run is the baseline, measured in the same run. Prints a table.

    .venv/bin/python bench/broker_fanout.py [--events 2000] [--queues 1,4] [--batch 200] [--runs 2]
"""
import argparse
import os
import sys
import threading
import time
import uuid
import warnings

warnings.simplefilter("ignore")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kombu import Connection, Consumer, Exchange, Queue  # noqa: E402

from helpdesk_common.events import new_event  # noqa: E402
from procstat import broker_cpu  # noqa: E402
from helpdesk_common.adapters.relay import ConfirmedPublisher  # noqa: E402
from tests.stack import Vhost  # noqa: E402

TICKET = {"number": "HD-000001", "subject": "backlog 00000 printer prints blank pages",
          "description": "Hello,\n\nThe printer on floor 0 prints blank pages since this morning (request 0).\n\n"
                         "Regards,\nCustomer",
          "requester": {"email": "customer0@example.com", "name": "Customer 0", "contact_id": 1,
                        "contact_ambiguous": False},
          "channel": "email", "priority": "normal", "severity": None, "status": "new", "team": "support", "tier": 1,
          "assignee": None, "language": None, "category": None, "tags": [], "custom_fields": {}, "version": 1,
          "created_at": "2026-12-04T23:16:48.146629Z", "updated_at": "2026-12-04T23:16:48.146629Z",
          "first_response_at": None, "resolved_at": None, "closed_at": None,
          "sla": {"policy": "normal", "first_response_due_at": "2026-12-07T17:00:00Z",
                  "first_response_remaining_seconds": 28800.0, "first_response_breached": False,
                  "resolution_due_at": "2026-12-11T17:00:00Z", "resolution_remaining_seconds": 144000.0,
                  "resolution_breached": False, "paused": False, "breached": False}}


def one_run(amqp_uri, queues, events, per_message):
    """(broker CPU ms per event, seconds until every queue had every message) for one configuration."""
    exchange = Exchange("bench.events", type="topic", durable=True)
    names = [f"bench-fanout-{uuid.uuid4().hex[:8]}" for _ in range(queues)]
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        for name in names:
            Queue(name, exchange, routing_key="ticket_created", durable=True)(channel).declare()
    messages = []
    for start in range(0, events, per_message):
        envelopes = [new_event("ticket_created", {"ticket": dict(TICKET, number=f"HD-{n:06d}")},
                               subject=f"HD-{n:06d}") for n in range(start, min(events, start + per_message))]
        messages.append(envelopes[0] if per_message == 1 else
                        {"id": str(uuid.uuid4()), "type": "ticket_created", "events": envelopes})
    received = [0] * queues
    deadline = time.time() + 120

    def drain(index):
        with Connection(amqp_uri) as connection:
            def on_message(_body, message):
                received[index] += 1
                message.ack()
            queue = Queue(names[index], exchange, routing_key="ticket_created", durable=True)
            with Consumer(connection, [queue], callbacks=[on_message], prefetch_count=200, accept=["json"]):
                while received[index] < len(messages) and time.time() < deadline:
                    try:
                        connection.drain_events(timeout=0.2)
                    except OSError:  # socket.timeout: nothing arrived in 0.2 s; look at the deadline
                        pass

    before = broker_cpu()
    consumers = [threading.Thread(target=drain, args=(index,)) for index in range(queues)]
    for consumer in consumers:
        consumer.start()
    started = time.perf_counter()
    publisher = ConfirmedPublisher(amqp_uri, exchange)
    for start in range(0, len(messages), 200):  # the relay's batch: one confirm round trip per 200 messages
        publisher.publish_batch(messages[start:start + 200])
    publisher.close()
    for consumer in consumers:
        consumer.join()
    elapsed = time.perf_counter() - started
    time.sleep(0.3)  # the broker finishes writing the acks it was sent
    cpu = broker_cpu() - before
    assert received == [len(messages)] * queues, received
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        for name in names:
            Queue(name, exchange)(channel).delete()
    return cpu * 1000 / events, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--queues", default="1,4", help="consuming queues, comma-separated counts")
    parser.add_argument("--batch", type=int, default=200, help="events per message of the batched stream")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    vhost = Vhost().create()
    rows = []
    try:
        for queues in (int(q) for q in args.queues.split(",")):
            for _ in range(args.runs):
                single, single_s = one_run(vhost.amqp_uri, queues, args.events, 1)
                batched, batched_s = one_run(vhost.amqp_uri, queues, args.events, args.batch)
                rows.append((queues, single, single_s, batched, batched_s))
    finally:
        vhost.delete()
    print(f"\nBroker CPU per event carried to every queue (RabbitMQ on loopback, {args.events} persistent confirmed "
          f"ticket_created events, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})\n")
    print(f"| queues | one event per message: ms/event (baseline) | s | {args.batch} events per message: ms/event "
          f"| s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|")
    for queues, single, single_s, batched, batched_s in rows:
        print(f"| {queues} | {single:.3f} | {single_s:.2f} | {batched:.3f} | {batched_s:.2f} | "
              f"{batched / single if single else float('nan'):.2f} |")


if __name__ == "__main__":
    main()
