"""``reliable_batch_handler`` on a real RabbitMQ (throwaway vhost): events many to a message, as the outbox
relay puts them on ``<source>.batches``, and single events (what waited in the queue before, a split, a
replay) in the same queue; a bad event in a batch is retried and parked alone."""
import json
import os
import sys
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from helpdesk_common.adapters import parking
from helpdesk_common.adapters.consumer import reliable_batch_handler, reliable_handler
from helpdesk_common.events import batch_exchange_name, exchange_name
from helpdesk_common.testing import publish_events

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_reliable_handler import (ContextSpy, Metric, depth, new_envelope, publish, queue_of, start,  # noqa: E402
                                   wait_for)

FAST = (0.05,)


def relay(amqp_uri, envelopes):
    """What the outbox relay does with a batch of rows."""
    publish_events(amqp_uri, envelopes)


def test_the_relay_puts_each_event_on_the_stream_and_each_type_once_on_the_batches(rabbit_config):
    amqp_uri = rabbit_config["AMQP_URI"]
    created = [new_envelope() for _ in range(3)]
    updated = [new_envelope("ticket_updated") for _ in range(2)]
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        stream = Queue(f"t-{uuid.uuid4().hex[:6]}", Exchange(exchange_name("tickets"), type="topic", durable=True),
                       routing_key="#")
        batched = Queue(f"t-{uuid.uuid4().hex[:6]}", Exchange(batch_exchange_name("tickets"), type="topic",
                                                              durable=True), routing_key="#")
        for queue in (stream, batched):
            queue(channel).declare()
        relay(amqp_uri, [created[0], updated[0], created[1], created[2], updated[1]])

        singles = [stream(channel).get(no_ack=True) for _ in range(6)]
        assert [json.loads(m.body)["id"] for m in singles[:5]] == [
            e["id"] for e in (created[0], updated[0], created[1], created[2], updated[1])]
        assert singles[5] is None and singles[0].properties["message_id"] == created[0]["id"]
        batches = [batched(channel).get(no_ack=True) for _ in range(3)]
        assert batches[2] is None
        bodies = [json.loads(m.body) for m in batches[:2]]
        assert [(m.delivery_info["routing_key"], b["type"], b["source"]) for m, b in zip(batches, bodies)] == [
            ("ticket_created", "ticket_created", "tickets"), ("ticket_updated", "ticket_updated", "tickets")]
        assert [b["events"] for b in bodies] == [created, updated]  # whole envelopes, in the relay's order
        assert batches[0].properties["delivery_mode"] == 2
        channel.close()


def test_a_batch_is_one_worker_and_single_events_in_the_queue_are_taken_too(container_factory, rabbit_config):
    amqp_uri = rabbit_config["AMQP_URI"]
    calls, workers = [], []

    class Old:
        name = "batcher"

        @reliable_handler("tickets", "ticket_created")
        def on_ticket_created(self, event):
            raise AssertionError("not started in this test")

    class Batcher:
        name = "batcher"
        spy = ContextSpy(workers)

        @reliable_batch_handler("tickets", "ticket_created", backoff=FAST)
        def on_ticket_created(self, events):
            calls.append([event["id"] for event in events])

    # What waited in the per-event queue when the service moved to batches (the old version declared it).
    old = start(container_factory, Old, rabbit_config)
    old.kill()
    waiting = new_envelope()
    publish(amqp_uri, waiting)
    assert depth(amqp_uri, queue_of("batcher", "on_ticket_created")) == 1

    container = start(container_factory, Batcher, rabbit_config)
    wait_for(lambda: calls == [[waiting["id"]]], "the single event that waited")
    publish(amqp_uri, new_envelope())  # per-event stream only: this queue no longer takes it
    batch = [new_envelope() for _ in range(50)]
    relay(amqp_uri, batch)
    wait_for(lambda: len(calls) == 2, "the batch")
    container.stop()

    assert calls[1] == [event["id"] for event in batch]
    assert len(workers) == 2  # one worker for the single event, one for fifty
    assert depth(amqp_uri, queue_of("batcher", "on_ticket_created")) == 0


def test_skipped_events_leave_the_batch_and_an_all_skipped_batch_starts_no_worker(container_factory,
                                                                                   rabbit_config):
    amqp_uri = rabbit_config["AMQP_URI"]
    calls, workers = [], []

    class Skipping:
        name = "batch_skipping"
        spy = ContextSpy(workers)

        @reliable_batch_handler("tickets", "ticket_created", backoff=FAST,
                                skip=lambda event: event["correlation_id"] == "echo")
        def on_ticket_created(self, events):
            calls.append([event["id"] for event in events])

    skipped = Metric("helpdesk_consumer_skipped_total", service="batch_skipping", handler="on_ticket_created")
    container = start(container_factory, Skipping, rabbit_config)
    echoes = [{**new_envelope(), "correlation_id": "echo"} for _ in range(4)]
    relay(amqp_uri, echoes)
    kept = new_envelope()
    relay(amqp_uri, [echoes[0], kept, echoes[1]])
    wait_for(lambda: calls and skipped.delta == 6, "one event handled and six skipped")
    container.stop()

    assert calls == [[kept["id"]]] and len(workers) == 1


def test_a_bad_event_in_a_batch_is_retried_and_parked_alone_and_replayed_to_this_handler(container_factory,
                                                                                        rabbit_config):
    amqp_uri = rabbit_config["AMQP_URI"]
    done, failures, state = [], [], {"broken": True}

    class Strict:
        name = "batch_strict"

        @reliable_batch_handler("tickets", "ticket_created", max_attempts=3, backoff=FAST)
        def on_ticket_created(self, events):
            if state["broken"] and any(event["subject"] == "poison" for event in events):
                failures.append(len(events))
                raise RuntimeError("cannot handle the poison")
            done.extend(event["id"] for event in events)

    split = Metric("helpdesk_consumer_batches_split_total", service="batch_strict", handler="on_ticket_created")
    container = start(container_factory, Strict, rabbit_config)
    good = [new_envelope() for _ in range(5)]
    poison = {**new_envelope(), "subject": "poison"}
    relay(amqp_uri, good[:2] + [poison] + good[2:])

    wait_for(lambda: parking.count_parked(amqp_uri) == 1, "the poison parked")
    assert sorted(done) == sorted(event["id"] for event in good)  # its neighbours went through once each
    assert failures == [6, 1, 1, 1]  # the batch once, then the poison alone: three attempts
    assert split.delta == 1
    [parked] = parking.list_parked(amqp_uri)
    assert parked.body == poison and parked.message_id == poison["id"]
    assert (parked.handler, parked.attempts) == ("batch_strict.on_ticket_created", 3)

    state["broken"] = False
    assert [p.message_id for p in parking.replay(amqp_uri, poison["id"]).replayed] == [poison["id"]]
    wait_for(lambda: poison["id"] in done, "the replayed poison handled")
    container.stop()
    assert parking.count_parked(amqp_uri) == 0
    assert depth(amqp_uri, queue_of("batch_strict", "on_ticket_created")) == 0


@pytest.mark.parametrize("events", [1, 3])
def test_a_failure_to_put_a_batch_back_keeps_it_in_its_queue(container_factory, rabbit_config, monkeypatch,
                                                               events):
    """Split (a batch) or rerouted (a single event): when the broker will not take the copies, the message
    goes back to its queue rather than being acknowledged, and nothing is lost."""
    amqp_uri = rabbit_config["AMQP_URI"]
    calls = []

    class Unlucky:
        name = "batch_unlucky"

        @reliable_batch_handler("tickets", "ticket_created", backoff=FAST)
        def on_ticket_created(self, batch):
            calls.append(len(batch))
            raise RuntimeError("fails")

    from helpdesk_common.adapters.consumer import ReliableBatchHandler, Republisher
    monkeypatch.setattr(ReliableBatchHandler, "reroute_failure_delay", 0.05)
    container = start(container_factory, Unlucky, rabbit_config)
    monkeypatch.setattr(Republisher, "publish", lambda *a, **k: (_ for _ in ()).throw(OSError("broker away")))
    relay(amqp_uri, [new_envelope() for _ in range(events)])
    wait_for(lambda: len(calls) >= 3, "the same message run again")
    container.kill()
    assert set(calls) == {events}  # never split, never lost: the whole message came back each time
    assert depth(amqp_uri, queue_of("batch_unlucky", "on_ticket_created")) == 1


def test_a_relay_batch_larger_than_a_message_should_be_goes_in_several(rabbit_config, monkeypatch):
    """Long mails make large events: the events of one type are cut into messages of about
    ``max_batch_bytes`` (a single larger event alone), every event once, in order."""
    from helpdesk_common.adapters.relay import ConfirmedPublisher

    amqp_uri = rabbit_config["AMQP_URI"]
    monkeypatch.setattr(ConfirmedPublisher, "max_batch_bytes", 3000)
    events = [{**new_envelope(), "data": {"ticket": {"number": f"HD-{n}", "description": "x" * size}}}
              for n, size in enumerate((500, 500, 500, 5000, 100, 100))]
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        batched = Queue(f"t-{uuid.uuid4().hex[:6]}", Exchange(batch_exchange_name("tickets"), type="topic",
                                                              durable=True), routing_key="#")
        batched(channel).declare()
        relay(amqp_uri, events)
        messages = []
        while (message := batched(channel).get(no_ack=True)) is not None:
            messages.append([event["data"]["ticket"]["number"] for event in json.loads(message.body)["events"]])
        channel.close()
    assert messages == [["HD-0", "HD-1", "HD-2"], ["HD-3"], ["HD-4", "HD-5"]]
