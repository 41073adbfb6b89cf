"""The analytics service on a real RabbitMQ (throwaway vhost per test) and a real database: events published
as the services' outbox relays publish them reach the read model once, and reports answer over RPC."""
from datetime import timedelta

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook

from analytics_history import START, generate
from helpdesk_analytics.models import ProcessedEvent, TicketFact
from helpdesk_analytics.service import AnalyticsService
from helpdesk_analytics.surge_models import SummaryRecipient
from helpdesk_common.adapters.queues import rpc
from helpdesk_common.database import utcnow
from helpdesk_common.events import new_event
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


class Intake:
    """Stands in for intake's ``send_account_mail`` RPC (which needs an SMTP server;
    tests/ui/test_dashboard_browser.py has the real one): records the mails it is handed, over the real broker."""

    name = "intake"
    mails = []

    @rpc
    def send_account_mail(self, mail):
        Intake.mails.append(mail)


def test_the_weekly_summary_goes_to_the_accounts_the_gateway_announced_and_the_configured_list(container_factory,
                                                                                              config, sessions):
    """``account_changed`` from the gateway through the broker: the supervisors and admins among the accounts,
    with ``WEEKLY_SUMMARY_TO`` as an extra list, get the summary once; an agent does not."""
    Intake.mails = []
    container_factory(Intake, config).start()
    analytics = container_factory(AnalyticsService, dict(config, WEEKLY_SUMMARY_TO="leads@example.org",
                                                         WEEKLY_SUMMARY_INTERVAL=3600))
    analytics.start()
    at = utcnow().isoformat()
    accounts = [new_event("account_changed", {"account": {"id": n, "email": email, "role": role, "changed_at": at}})
                for n, (email, role) in enumerate([("sue@example.org", "supervisor"), ("ada@example.org", "admin"),
                                                   ("bo@example.org", "agent")], start=1)]
    publish_events(config["AMQP_URI"], accounts, source="gateway")

    def known():
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(SummaryRecipient)) == 3

    wait_for(known, timeout=30, message="the accounts announced")
    for _ in range(2):  # the timer firing again sends nothing twice
        with entrypoint_hook(analytics, "send_weekly_summary") as send:
            send()
    assert sorted(mail["to"] for mail in Intake.mails) == ["ada@example.org", "leads@example.org", "sue@example.org"]
    assert {mail["subject"] for mail in Intake.mails} == {Intake.mails[0]["subject"]}
    assert Intake.mails[0]["subject"].startswith("Helpdesk weekly summary")
