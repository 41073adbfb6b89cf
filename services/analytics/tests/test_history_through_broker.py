"""The done-when test of the analytics service: a generated history (thousands of tickets over four weeks,
three teams, five channels, four priorities, a business calendar with a holiday, pauses on pending, reopens,
escalations, SLA breaches, chats, CSAT and NPS answers, portal deflections) is published through the real
RabbitMQ as the services' outbox relays publish it (per source, in relay batches, some batches twice, the later
half out of order), while ``analytics-rebuild`` runs from the tickets' export; every report
then equals the brute-force recount from the raw events."""
import random
import threading

import pytest
import yaml
from sqlalchemy import func, select

from analytics_history import CALENDARS, START, STATUSES, export_of, generate
from analytics_recount import Recount
from helpdesk_analytics import rebuild, reports
from helpdesk_analytics.models import ProcessedEvent
from helpdesk_analytics.service import AnalyticsService
from helpdesk_common.testing import publish_events, wait_for
from test_reports_match_recount import ADMIN, CASES, END, NOW, assert_same

RELAY_BATCH = 200


@pytest.fixture
def config(rabbit_config, db_url, tmp_path):
    sla_file = tmp_path / "sla.yaml"  # the history's calendars, in the tickets service's SLA file shape
    sla_file.write_text(yaml.safe_dump(CALENDARS))
    return {**rabbit_config, "ANALYTICS_DB_URL": db_url, "serializer": "json", "max_workers": 4,
            "SLA_FILE": str(sla_file)}


def test_every_report_equals_the_recount_after_the_broker_and_a_rebuild_during_traffic(container_factory, config,
                                                                                       sessions, settings):
    events = generate(tickets=2000, weeks=4, seed=15)
    container = container_factory(AnalyticsService, config)
    container.start()
    rng = random.Random(4)
    batches = []
    for index in range(0, len(events), RELAY_BATCH):
        chunk = events[index:index + RELAY_BATCH]
        by_source = {}
        for event in chunk:
            by_source.setdefault(event["source"], []).append(event)
        batches.extend(by_source.items())
    batches += rng.sample(batches, len(batches) // 10)  # a relay that died before marking its batch sent
    rng.shuffle(batches[len(batches) // 2:])  # the later part out of order
    rebuilt = {}

    def rebuild_meanwhile():  # the export of everything, applied while the events are still arriving
        rebuilt["tickets"] = rebuild.rebuild(export_of(events, page_size=250), sessions, settings, page_size=250,
                                             report=lambda *a: None)

    worker = threading.Thread(target=rebuild_meanwhile)
    for number, (source, envelopes) in enumerate(batches):
        publish_events(config["AMQP_URI"], envelopes, source=source)
        if number == len(batches) // 3:
            worker.start()
    worker.join(timeout=600)
    assert rebuilt.get("tickets") == 2000

    def all_processed():
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(ProcessedEvent)) == len(events)

    wait_for(all_processed, timeout=600, message="every event of the history processed", interval=0.5)
    recount = Recount(events, STATUSES, CALENDARS)
    with sessions() as session:
        for tz in ("UTC", "Europe/Amsterdam"):
            for measure, group_by in CASES:
                query = {"from": START.isoformat(), "to": END.isoformat(), "tz": tz, "group_by": ",".join(group_by)}
                expected, grouped = recount.report(measure, START, END, group_by, tz=tz, now=NOW)
                assert expected, (measure, group_by)
                assert_same(reports.run(session, measure, query, ADMIN, NOW), expected, grouped)
