"""The relay's hand-built frames, read back from a real RabbitMQ through kombu: what py-amqp would send."""
import json
import uuid

import pytest
from kombu import Connection, Queue

from helpdesk_common.adapters.amqp_frames import headers_table
from helpdesk_common.adapters.exchanges import event_exchanges
from helpdesk_common.adapters.relay import ConfirmedPublisher


def envelope(description="Hello", correlation_id="intake-email:abc"):
    return {"id": str(uuid.uuid4()), "type": "ticket_created", "source": "framestest", "correlation_id": correlation_id,
            "data": {"ticket": {"number": "HD-000001", "description": description}}}


@pytest.fixture
def published(rabbit_config):
    """Publishes envelopes through ConfirmedPublisher; returns the messages each exchange delivered."""
    uri = rabbit_config["AMQP_URI"]
    events, batches = event_exchanges("framestest")
    publisher = ConfirmedPublisher(uri, events, batch_exchange=batches)

    def publish(envelopes):
        with Connection(uri) as connection:
            single = Queue(f"frames-{uuid.uuid4().hex[:8]}", events, routing_key="#", exclusive=True)
            batched = Queue(f"frames-{uuid.uuid4().hex[:8]}", batches, routing_key="#", exclusive=True)
            channel = connection.default_channel
            single(channel).declare()
            batched(channel).declare()
            publisher.publish_batch(envelopes)
            return [_drain(single(channel)), _drain(batched(channel))]

    yield publish
    publisher.close()


def _drain(queue):
    messages = []
    while (message := queue.get(no_ack=True)) is not None:
        messages.append(message)
    return messages


def test_each_event_arrives_as_py_amqp_would_have_sent_it(published):
    sent = [envelope(), envelope(correlation_id=None), envelope(description="Grüße, 你好 " * 3)]
    singles, batches = published(sent)
    assert [json.loads(m.body) for m in singles] == sent
    for message, event in zip(singles, sent):
        assert message.content_type == "application/json" and message.content_encoding == "utf-8"
        assert message.properties["delivery_mode"] == 2
        assert message.properties["message_id"] == event["id"] and message.properties["type"] == "ticket_created"
        assert message.headers == {"correlation_id": event["correlation_id"] or ""}
        assert message.delivery_info["routing_key"] == "ticket_created"
    (batch,) = batches
    assert json.loads(batch.body) == {"source": "framestest", "type": "ticket_created", "events": sent}
    assert batch.headers == {"events": 3}


def test_a_body_larger_than_a_frame_is_split_and_arrives_whole(published):
    long = envelope(description="x" * 600_000)  # several frames of the default 128 KiB
    singles, batches = published([long, envelope()])
    assert json.loads(singles[0].body) == long and len(singles) == 2
    assert json.loads(batches[0].body)["events"][0] == long


def test_headers_tables_are_written_as_py_amqp_writes_them():
    from io import BytesIO

    from amqp.serialization import _write_table

    for headers in ({"correlation_id": "x"}, {"events": 200}, {"big": 2 ** 40, "s": "ä"}, {}):
        out = BytesIO()
        _write_table(headers, out.write, [])
        assert headers_table(headers) == out.getvalue()
