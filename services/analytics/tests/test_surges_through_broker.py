"""Surges on a real RabbitMQ (throwaway vhost): new tickets published as the tickets service's relay publishes
them reach the detector's own consumer, and its timer announces ``spike_detected`` on ``analytics.events``
through the service's outbox, once. kb_search is not running here: the wording is not analysed, and the
category surge is found all the same."""
from datetime import timedelta

import pytest
from kombu import Connection, Queue
from nameko.standalone.rpc import ServiceRpcProxy

from helpdesk_analytics.service import AnalyticsService
from helpdesk_common.adapters.exchanges import event_exchanges
from helpdesk_common.database import utcnow
from helpdesk_common.events import new_event
from helpdesk_common.testing import publish_events, wait_for

ADMIN = {"actor": "ada", "role": "admin"}


@pytest.fixture
def config(rabbit_config, db_url):
    return {**rabbit_config, "ANALYTICS_DB_URL": db_url, "serializer": "json", "SURGE_INTERVAL": 0.2}


def _created(i, at):
    ticket = {"number": f"HD-{i:06d}", "subject": "Checkout fails with error 503", "description": "Error 503.",
              "channel": "web", "priority": "normal", "status": "new", "category": "payments", "version": 1,
              "created_at": at.isoformat(), "updated_at": at.isoformat(),
              "requester": {"email": f"c{i}@example.com"}}
    return new_event("ticket_created", {"ticket": ticket}, subject=ticket["number"])


def test_a_surge_is_announced_once_on_the_event_stream(container_factory, config):
    events_exchange, _ = event_exchanges("analytics")
    with Connection(config["AMQP_URI"]) as connection:
        queue = Queue("test-spikes", exchange=events_exchange, routing_key="spike_detected", exclusive=True)
        queue(connection.default_channel).declare()  # bound before anything is published
        container = container_factory(AnalyticsService, config)
        container.start()
        now = utcnow()
        events = [_created(i, now - timedelta(minutes=20 - i)) for i in range(8)]
        publish_events(config["AMQP_URI"], events + events[:3], source="tickets")  # three delivered twice

        received = []
        with connection.Consumer(queue, callbacks=[lambda body, message: (received.append(body), message.ack())],
                                 accept=["json"]):
            def announced():
                try:
                    connection.drain_events(timeout=0.2)
                except TimeoutError:
                    pass
                return [e for e in received if e["data"]["dimension"] == "category"]
            (event,) = wait_for(announced, timeout=30, message="spike_detected on analytics.events")
            for _ in range(10):  # ten more looks by the timer (0.2 s): no surge is announced again
                try:
                    connection.drain_events(timeout=0.25)
                except TimeoutError:
                    pass
    kinds = [(e["data"]["dimension"], e["data"]["value"]) for e in received]
    assert sorted(kinds) == [("category", "payments"), ("channel", "web")]  # each once    assert event["source"] == "analytics" and event["data"]["value"] == "payments"
    assert sorted(t["number"] for t in event["data"]["tickets"]) == [e["subject"] for e in events]
    assert event["data"]["count"] == 8 and event["data"]["baseline"] == 0
    with ServiceRpcProxy("analytics", config, timeout=15) as analytics:
        (spike,) = [s for s in analytics.problems(ADMIN)["spikes"] if s["dimension"] == "category"]
    assert spike["spike_id"] == event["data"]["spike_id"]
