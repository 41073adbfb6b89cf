"""The routing service on a real RabbitMQ (throwaway vhost per test) and a real database.

Tickets' events are published as the tickets outbox publishes them (JSON envelope on ``tickets.events``);
routing's events are read from ``routing.events`` by a plain kombu consumer, as any integrator would.
The last test runs two routing *processes* (``nameko run``) on one broker and one database.
"""
import os
import subprocess
import sys
from collections import Counter

import pytest
from nameko.exceptions import UnknownService
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from helpdesk_common.adapters.database import engine_for
from helpdesk_common.errors import NotFound, ValidationFailed
from helpdesk_common.events import CATALOGUE, new_event
from helpdesk_common.testing import EventTap, publish_events, wait_for
from helpdesk_routing.models import Agent, Assignment, RoutedTicket
from helpdesk_routing.service import RoutingService

SERVICE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN = {"actor": "ada", "role": "admin", "correlation_id": "corr-1"}


def ticket_created(number, **fields):
    ticket = {"number": number, "subject": "Help", "description": "Something is wrong.",
              "requester": {"email": "c@example.com"}, "channel": "email", "priority": "normal", "status": "new",
              "tier": 1, "tags": [], "custom_fields": {}, "version": 1,
              "created_at": "2026-11-23T12:00:00+00:00", "updated_at": "2026-11-23T12:00:00+00:00", **fields}
    envelope = new_event("ticket_created", {"ticket": ticket}, correlation_id=f"corr-{number}", subject=number)
    envelope["source"] = "tickets"
    return envelope, ticket


def ticket_updated(ticket, **changes):
    after = {**ticket, **changes, "version": ticket["version"] + 1}
    return new_event("ticket_updated", {"ticket": after, "changes": [
        {"field": f, "old": ticket.get(f), "new": v} for f, v in changes.items()]}, subject=ticket["number"])


def publish(amqp_uri, envelope):
    """What the tickets outbox relay does with one row."""
    publish_events(amqp_uri, [envelope], source="tickets")


@pytest.fixture
def config(rabbit_config, db_url):
    return {**rabbit_config, "ROUTING_DB_URL": db_url, "serializer": "json", "OUTBOX_POLL_INTERVAL": 0.2,
            "ESCALATE_AFTER_REOPENS": 2}


@pytest.fixture
def tap(config):
    tap = EventTap(config["AMQP_URI"], "routing")
    yield tap
    tap.close()


@pytest.fixture
def routing(container_factory, config, tap):
    container = container_factory(RoutingService, config)
    container.start()
    with ServiceRpcProxy("routing", config, timeout=15) as proxy:
        yield proxy


def test_tickets_in_three_languages_reach_the_right_agents_and_the_queue_drains(routing, config, tap, sessions):
    amqp = config["AMQP_URI"]
    routing.create_team({"name": "products", "strategy": "skills_and_load"})
    routing.add_rule({"name": "printers", "conditions": {"words": ["printer", "skrivare", "printer"]},
                      "actions": {"team": "products", "required_skills": {"printers": 2}}})
    routing.add_rule({"name": "vpn", "conditions": {"words": ["vpn"]},
                      "actions": {"team": "products", "required_skills": {"vpn": 3}, "priority": "high"}})
    anna = routing.create_agent({"name": "Anna", "email": "anna@example.com", "languages": ["sv", "en"],
                                 "skills": {"printers": 3}, "teams": ["products"], "capacity": 1,
                                 "presence": "online"}, ADMIN)
    piet = routing.create_agent({"name": "Piet", "email": "piet@example.com", "languages": ["nl", "en"],
                                 "skills": {"vpn": 4, "printers": 2}, "teams": ["products"], "capacity": 2,
                                 "presence": "online"}, ADMIN)
    eric = routing.create_agent({"name": "Eric", "email": "eric@example.com", "languages": ["en"],
                                 "skills": {"vpn": 3}, "teams": ["products"], "capacity": 1}, ADMIN)  # offline

    sv, sv_ticket = ticket_created("HD-000001", subject="Skrivaren", description="Min skrivare fungerar inte, den är trasig.")
    nl, _ = ticket_created("HD-000002", subject="VPN", description="Mijn VPN werkt niet sinds maandag, het is erg traag.")
    en, _ = ticket_created("HD-000003", subject="VPN", description="The VPN does not connect since this morning.",
                           language="en")
    for envelope in (sv, nl, en):
        publish(amqp, envelope)
    publish(amqp, nl)  # delivered twice: takes effect once
    tap.wait_for(lambda got: len([e for e in got if e["type"] in ("ticket_assigned", "ticket_queued")]) >= 3)
    assigned = {e["data"]["ticket_number"]: e["data"] for e in tap.of("ticket_assigned")}
    assert assigned["HD-000001"]["assignee"] == anna["assignee"] and assigned["HD-000001"]["language"] == "sv"
    assert assigned["HD-000002"]["assignee"] == piet["assignee"] and assigned["HD-000002"]["priority"] == "high"
    assert assigned["HD-000003"]["assignee"] == piet["assignee"]  # Eric is offline; Piet has room for two
    assert assigned["HD-000001"]["reason"] == "rule printers"
    assert tap.envelopes[0]["correlation_id"] == "corr-HD-000001"
    for envelope in tap.envelopes:
        CATALOGUE[envelope["type"]].data_model.model_validate(envelope["data"])

    # a fourth VPN ticket waits; Eric coming online takes it
    q, _ = ticket_created("HD-000004", subject="vpn again", description="The VPN again, it does not work.")
    publish(amqp, q)
    tap.wait_for(lambda got: any(e["type"] == "ticket_queued" for e in got))
    assert routing.list_queue({"team": "products"}, ADMIN)[0]["number"] == "HD-000004"
    assert routing.set_presence(eric["id"], {"presence": "online"}, ADMIN)["load"] == 1
    tap.wait_for(lambda got: any(e["type"] == "ticket_assigned" and e["data"]["ticket_number"] == "HD-000004"
                                 for e in got))

    # Anna resolves her ticket: her capacity frees (nothing waits for her); then it is reopened, twice
    publish(amqp, ticket_updated(sv_ticket, status="resolved"))
    wait_for(lambda: routing.get_agent(anna["id"])["load"] == 0, message="Anna's load to fall")
    for _ in range(2):
        publish(amqp, ticket_updated({**sv_ticket, "status": "resolved"}, status="open"))
        publish(amqp, ticket_updated({**sv_ticket, "status": "open"}, status="resolved"))
    tap.wait_for(lambda got: any(e["type"] == "ticket_escalated" for e in got))
    escalated = tap.of("ticket_escalated")[0]["data"]
    assert (escalated["trigger"], escalated["from_tier"], escalated["to_tier"]) == ("reopened", 1, 2)

    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Assignment).where(
            Assignment.ticket_number == "HD-000002")) == 1


def test_rpc_management_and_errors(routing):
    with pytest.raises(ValidationFailed) as error:
        routing.create_agent({"name": "X", "email": "not-an-email"}, ADMIN)
    assert error.value.details[0]["field"] == "email"
    with pytest.raises(NotFound):
        routing.get_agent(404)
    routing.create_team({"name": "desk"})
    agent = routing.create_agent({"name": "Y", "email": "y@example.com", "teams": ["desk"]}, ADMIN)
    changed = routing.update_agent(agent["id"], {"capacity": 3, "skills": {"SQL": 2}}, ADMIN)
    assert (changed["capacity"], changed["skills"], changed["presence"]) == (3, {"sql": 2}, "offline")
    assert [t["name"] for t in routing.list_teams()] == ["desk"]
    rule = routing.add_rule({"name": "r", "actions": {"tier": 2}})
    assert routing.list_rules() == [rule]
    assert routing.delete_rule(rule["id"]) == {"deleted": rule["id"]}
    assert routing.ping()["ok"]


@pytest.fixture
def sessions(db_url):
    return sessionmaker(engine_for(db_url), expire_on_commit=False)


def _answers(proxy):
    try:
        return proxy.ping()["ok"]
    except UnknownService:  # not started yet
        return False


def test_two_routing_processes_on_one_broker_and_database(rabbit_config, db_url, sessions, tmp_path):
    """Hundreds of tickets at once, two replicas: each routed once, no agent past capacity."""
    amqp = rabbit_config["AMQP_URI"]
    env = dict(os.environ, HELPDESK_AMQP_URI=amqp, HELPDESK_ROUTING_DB_URL=db_url, PYTHONWARNINGS="ignore",
               HELPDESK_LOG_LEVEL="ERROR")
    procs = [subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "nameko"), "run", "helpdesk_routing.service",
                               "--config", os.path.join(SERVICE_DIR, "config.yaml")],
                              env=env, cwd=str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(2)]
    try:
        with ServiceRpcProxy("routing", {"AMQP_URI": amqp}, timeout=30) as routing:
            wait_for(lambda: _answers(routing), timeout=30, message="a replica to answer")
            routing.create_team({"name": "desk"})
            for i in range(10):
                routing.create_agent({"name": f"A{i}", "email": f"a{i}@example.com", "teams": ["desk"],
                                      "capacity": 1 + i % 5, "presence": "online"}, ADMIN)
        tap = EventTap(amqp, "routing")
        count = 300
        envelopes = [ticket_created(f"HD-{n:06d}", team="desk",
                                    priority=("low", "normal", "high", "urgent")[n % 4])[0] for n in range(count)]
        for start in range(0, count, 200):  # as the relay: batches of up to 200 rows
            publish_events(amqp, envelopes[start:start + 200], source="tickets")
        # on SQLite two relays may both publish one outbox row (at least once): consumers dedupe by id
        unique = lambda got: list({e["id"]: e for e in got}.values())  # noqa: E731
        tap.wait_for(lambda got: len(unique(got)) >= count, timeout=60, message=f"{count} routing outcomes")
        tap.close()
        events = unique(tap.envelopes)
        capacity = sum(1 + i % 5 for i in range(10))
        outcomes = Counter(e["type"] for e in events)
        assert outcomes == {"ticket_assigned": capacity, "ticket_queued": count - capacity}
        assert len({e["data"]["ticket_number"] for e in events}) == count  # each ticket once
        with sessions() as session:
            for agent in session.scalars(select(Agent)):
                assert agent.load == agent.capacity
            assert session.scalar(select(func.count()).select_from(RoutedTicket)) == count
        assert all(p.poll() is None for p in procs), "a replica died"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_tickets_waiting_in_the_queue_are_routed_in_batches_and_a_bad_one_fails_alone(container_factory, config,
                                                                                     sessions):
    """Forty new tickets (three delivered twice, one malformed) wait in routing's queue while it is down;
    when it starts they are routed through the group commit: every good ticket once, loads within
    capacity, the malformed one retried alone (its neighbours unharmed)."""
    from helpdesk_common.adapters.group_commit import BATCH_SIZE
    from helpdesk_routing.models import Outbox

    first = container_factory(RoutingService, config)
    first.start()  # declares the queue
    with ServiceRpcProxy("routing", config, timeout=15) as proxy:
        proxy.create_team({"name": "desk", "strategy": "least_loaded"})
        for i in range(5):
            proxy.create_agent({"name": f"A{i}", "email": f"a{i}@example.com", "teams": ["desk"], "capacity": 4,
                                "presence": "online"}, ADMIN)
    first.stop()
    envelopes = [ticket_created(f"HD-{n:06d}", team="desk")[0] for n in range(1, 41)]
    envelopes[7]["data"]["ticket"]["created_at"] = "not a moment"  # fails in the batch, and alone
    for envelope in envelopes + envelopes[:3]:
        publish(config["AMQP_URI"], envelope)
    before = BATCH_SIZE.labels("routing")._sum.get()

    container_factory(RoutingService, config).start()
    good = {e["data"]["ticket"]["number"] for i, e in enumerate(envelopes) if i != 7}

    def decided():  # what routing staged for the broker (its outbox), ticket by ticket
        with sessions() as session:
            return Counter(row.envelope["data"]["ticket_number"] for row in session.scalars(
                select(Outbox).where(Outbox.event_type.in_(["ticket_assigned", "ticket_queued"]))))

    wait_for(lambda: set(decided()) >= good, timeout=30)
    with sessions() as session:
        routed = set(session.scalars(select(RoutedTicket.number)))
        loads = [a.load for a in session.scalars(select(Agent))]
        per_ticket = Counter(session.scalars(select(Assignment.ticket_number)))
    assert routed == good
    assert loads == [4] * 5 and max(per_ticket.values()) == 1 and len(per_ticket) == 20
    assert set(decided()) == good and max(decided().values()) == 1
    assert BATCH_SIZE.labels("routing")._sum.get() - before >= len(envelopes)  # every delivery went through it
