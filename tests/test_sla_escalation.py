"""SLA warning, breach and the automatic escalation to tier 2 across services: the tickets service and the
routing service in real containers on a real RabbitMQ, with the tickets timer reading a test clock."""
from datetime import datetime, timedelta, timezone

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

import helpdesk_tickets.service
from helpdesk_common.adapters.database import engine_for
from helpdesk_common.testing import EventTap, migrated_test_database, wait_for
from helpdesk_routing.migrate import upgrade as upgrade_routing
from helpdesk_routing.service import RoutingService
from helpdesk_tickets.migrate import upgrade as upgrade_tickets
from helpdesk_tickets.service import TicketsService


@pytest.fixture
def db_url(tmp_path):
    """The tickets database (SQLite: the SLA clocks meet PostgreSQL in services/tickets/tests)."""
    with migrated_test_database("tickets", tmp_path, upgrade_tickets) as url:
        yield url


ADMIN = {"actor": "ada", "role": "admin", "correlation_id": "req-ada"}
SLA_FILE = """
warning_threshold: 0.75
calendar:
  timezone: Europe/Stockholm
  weekly: {mon: ["00:00-24:00"], tue: ["00:00-24:00"], wed: ["00:00-24:00"], thu: ["00:00-24:00"],
           fri: ["00:00-24:00"], sat: ["00:00-24:00"], sun: ["00:00-24:00"]}
policies:
  - {name: high, priority: high, first_response: 1h, resolution: 8h}
"""


class TestClock:
    """The time the tickets service's SLA timer sees; the test moves it."""

    __test__ = False

    def __init__(self):
        self.now = datetime.now(timezone.utc)

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = TestClock()
    monkeypatch.setattr(helpdesk_tickets.service, "utcnow", clock)
    return clock


@pytest.fixture
def platform(container_factory, rabbit_config, db_url, tmp_path, clock):
    sla_file = tmp_path / "sla.yaml"
    sla_file.write_text(SLA_FILE)
    routing_url = f"sqlite:///{tmp_path / 'routing.db'}"
    upgrade_routing(routing_url)
    base = {**rabbit_config, "serializer": "json", "OUTBOX_POLL_INTERVAL": 0.2}
    tickets_config = {**base, "TICKETS_DB_URL": db_url, "SLA_FILE": str(sla_file), "SLA_CHECK_INTERVAL": 0.05}
    routing_config = {**base, "ROUTING_DB_URL": routing_url}
    container_factory(RoutingService, routing_config).start()
    container_factory(TicketsService, tickets_config).start()
    with ServiceRpcProxy("tickets", tickets_config, timeout=15) as tickets_rpc, \
            ServiceRpcProxy("routing", routing_config, timeout=15) as routing_rpc:
        yield tickets_rpc, routing_rpc, tickets_config
    engine_for(routing_url).dispose()


def test_a_breached_sla_escalates_the_ticket_to_tier_2_and_it_all_shows_in_the_history(platform, clock):
    tickets_rpc, routing_rpc, config = platform
    tap = EventTap(config["AMQP_URI"], "tickets")
    try:
        routing_rpc.create_team({"name": "support", "strategy": "least_loaded"})
        first = routing_rpc.create_agent({"name": "Tove", "email": "tove@example.com", "teams": ["support"],
                                          "tier": 1, "capacity": 5, "presence": "online"}, ADMIN)
        second = routing_rpc.create_agent({"name": "Lars", "email": "lars@example.com", "teams": ["support"],
                                           "tier": 2, "capacity": 5, "presence": "online"}, ADMIN)
        ticket = tickets_rpc.create_ticket({"subject": "Skrivaren är trasig", "description": "Den skriver inte ut.",
                                            "requester": {"email": "eva@example.se"}, "priority": "high",
                                            "team": "support", "language": "sv"}, ADMIN)["ticket"]
        number = ticket["number"]
        created = datetime.fromisoformat(ticket["created_at"])
        assert ticket["sla"]["first_response_due_at"] == (created + timedelta(hours=1)).isoformat()
        wait_for(lambda: tickets_rpc.get_ticket(number, ADMIN)["assignee"] == first["assignee"],
                 message="routing to assign tier 1")

        clock.now = created + timedelta(minutes=45)  # 75% of the first-response target
        warned = tap.wait_for(lambda got: any(e["type"] == "sla_warning" for e in got))
        assert not [e for e in warned if e["type"] == "sla_breached"]
        clock.now = created + timedelta(hours=1, seconds=1)
        tap.wait_for(lambda got: any(e["type"] == "sla_breached" for e in got))
        escalated = wait_for(lambda: (lambda t: t["tier"] == 2 and t["assignee"] == second["assignee"] and t)(
            tickets_rpc.get_ticket(number, ADMIN)), message="the escalation to tier 2 to reach the ticket")
        assert escalated["sla"]["first_response_breached"] and escalated["sla"]["breached"]
        assert not escalated["sla"]["resolution_breached"]

        history = tickets_rpc.get_history(number, ADMIN)
        fields = [e["field"] for e in history]
        order = [fields.index(f) for f in ("sla_warning", "sla_breached", "ticket_escalated")]
        assert order == sorted(order)
        assert fields.count("sla_warning") == fields.count("sla_breached") == 1
        escalation = next(e for e in history if e["field"] == "ticket_escalated")
        assert escalation["actor"] == "routing" and escalation["new"]["trigger"] == "sla_breach"
        assert any(e["field"] == "tier" and (e["old"], e["new"]) == (1, 2) for e in history)
        assert [e["new"] for e in history if e["field"] == "assignee"][-1] == second["assignee"]
        routed = routing_rpc.get_ticket_routing(number, ADMIN)
        assert [(e["trigger"], e["from_tier"], e["to_tier"]) for e in routed["escalations"]] == [("sla_breach", 1, 2)]

        # the timer keeps ticking: nothing is announced twice
        clock.now = created + timedelta(hours=2)
        tickets_rpc.add_message(number, {"body": "We are on it.", "visibility": "public"}, ADMIN)
        tap.wait_for(lambda got: any(e["type"] == "message_added" for e in got))
        assert [e["type"] for e in tap.envelopes].count("sla_breached") == 1
    finally:
        tap.close()
