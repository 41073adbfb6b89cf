"""The analytics service on a real RabbitMQ (throwaway vhost per test) and a real database: events published
as the services' outbox relays publish them reach the read model once, and reports answer over RPC."""
from datetime import timedelta

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from analytics_history import START, generate
from helpdesk_analytics.models import ProcessedEvent, TicketFact
from helpdesk_analytics.service import AnalyticsService
from helpdesk_common.errors import ValidationFailed
from helpdesk_common.testing import publish_events, wait_for
from sqlalchemy import func, select

ADMIN = {"actor": "ada", "role": "admin"}


@pytest.fixture
def config(rabbit_config, db_url):
    return {**rabbit_config, "ANALYTICS_DB_URL": db_url, "serializer": "json"}


@pytest.fixture
def analytics(container_factory, config):
    container = container_factory(AnalyticsService, config)
    container.start()
    with ServiceRpcProxy("analytics", config, timeout=15) as proxy:
        yield proxy


def publish_by_source(amqp_uri, events):
    by_source = {}
    for event in events:
        by_source.setdefault(event["source"], []).append(event)
    for source, envelopes in by_source.items():
        publish_events(amqp_uri, envelopes, source=source)


def test_events_from_every_source_build_the_read_model_once(analytics, config, sessions):
    events = generate(tickets=40, weeks=1, seed=11)
    publish_by_source(config["AMQP_URI"], events)
    publish_by_source(config["AMQP_URI"], events[:30])  # redelivered

    def processed():
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(ProcessedEvent)) == len(events)

    wait_for(processed, timeout=30, message="every event processed")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(TicketFact)) == 40
    answer = analytics.report("volume", {"from": START.isoformat(), "to": (START + timedelta(days=14)).isoformat(),
                                         "tz": "UTC"}, ADMIN)
    assert answer["rows"] == [{"created": 40, "solved": answer["rows"][0]["solved"], "reopened": answer["rows"][0]["reopened"]}]


@pytest.mark.parametrize("query, code", [
    ({"from": "2026-10-10", "to": "2026-10-01", "tz": "UTC"}, "period_reversed"),
    ({"from": "2024-01-01", "to": "2026-10-01", "tz": "UTC"}, "period_too_long"),
    ({"from": "2026-10-01", "to": "2026-10-10", "tz": "UTC", "group_by": "team,colour"}, "unknown_group"),
    ({"from": "2026-10-01", "to": "2026-10-10", "tz": "Mars/Olympus"}, "unknown_time_zone"),
    ({"from": "yesterday", "to": "2026-10-10", "tz": "UTC"}, "invalid_period"),
])
def test_a_report_out_of_range_is_refused_with_a_code(analytics, query, code):
    with pytest.raises(ValidationFailed) as refused:
        analytics.report("volume", query, ADMIN)
    assert refused.value.code == code
