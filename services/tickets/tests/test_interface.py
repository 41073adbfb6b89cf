"""The tickets service in a real nameko container on a real RabbitMQ (a throwaway vhost per test).

Commands go in over RPC (nameko's standalone proxy, as the gateway calls it); events come out on the
``tickets.events`` topic exchange, read here by a plain kombu consumer as any integrator would.
"""
import time
import uuid
from datetime import datetime, timezone

import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import select

from helpdesk_common.errors import Forbidden, HelpdeskError, InvalidTransition, NotFound, ValidationFailed
from helpdesk_common.events import CATALOGUE, SPECVERSION
from helpdesk_common.testing import EventTap, publish_events, wait_for
from helpdesk_tickets.models import Outbox
from helpdesk_tickets.service import TicketsService

ENVELOPE_KEYS = {"id", "type", "source", "time", "specversion", "schema_version", "correlation_id", "data"}


def assert_envelope(envelope, message, event_type, correlation_id, subject):
    assert ENVELOPE_KEYS <= set(envelope)
    assert envelope["type"] == event_type
    assert envelope["source"] == "tickets"
    assert envelope["specversion"] == SPECVERSION
    assert envelope["schema_version"] == CATALOGUE[event_type].schema_version
    assert envelope["correlation_id"] == correlation_id
    assert envelope["subject"] == subject
    uuid.UUID(envelope["id"])
    assert datetime.fromisoformat(envelope["time"]).utcoffset().total_seconds() == 0
    # the AMQP message carries the same identity, so brokers' tools and consumers can dedupe
    assert message.delivery_info["routing_key"] == event_type
    assert message.properties["message_id"] == envelope["id"]
    assert message.properties["type"] == event_type
    assert message.headers["correlation_id"] == (correlation_id or "")
    return CATALOGUE[event_type].data_model.model_validate(envelope["data"])


@pytest.fixture
def config(rabbit_config, db_url):
    return {**rabbit_config, "TICKETS_DB_URL": db_url, "TICKET_NUMBER_FORMAT": "T{year}-{seq:05d}",
            "serializer": "json"}


@pytest.fixture
def tap(config):
    """Ticket events (contact events, also on tickets.events, are tested in test_contacts.py)."""
    tap = EventTap(config["AMQP_URI"], "tickets", routing_key=[
        name for name, entry in CATALOGUE.items() if entry.source == "tickets" and not name.startswith("contact_")])
    yield tap
    tap.close()


@pytest.fixture
def service(container_factory, config, tap):
    container = container_factory(TicketsService, config)
    container.start()
    return container


@pytest.fixture
def tickets(config, service):
    with ServiceRpcProxy("tickets", config, timeout=15) as proxy:
        yield proxy


AGENT = {"actor": "alan", "role": "agent", "correlation_id": "req-agent"}
CUSTOMER = {"actor": "carol", "role": "customer", "email": "carol@example.com", "correlation_id": "req-carol"}
TICKET = {"subject": "Printer on fire", "description": "It is on fire.",
          "requester": {"email": "carol@example.com", "name": "Carol"}, "tags": ["printer"]}


def test_a_ticket_life_is_announced_on_the_bus(tickets, tap, sessions):
    created = tickets.create_ticket(TICKET, CUSTOMER, idempotency_key="form-1")
    assert created["created"] is True
    number = created["ticket"]["number"]
    assert number == f"T{datetime.now(timezone.utc).year}-00001"
    envelopes = tap.wait_for_types(["ticket_created"])
    data = assert_envelope(envelopes[0], tap.messages[0][1], "ticket_created", "req-carol", number)
    assert data.ticket.number == number and data.ticket.status == "new"
    assert data.ticket.requester.email == "carol@example.com"

    updated = tickets.update_ticket(number, {"status": "pending"}, AGENT)
    assert updated["status"] == "pending"
    tickets.add_message(number, {"body": "Here is the log"}, CUSTOMER)
    envelopes = tap.wait_for_types(["ticket_created", "ticket_updated", "status_changed", "message_added",
                                    "status_changed"])

    data = assert_envelope(envelopes[1], tap.messages[1][1], "ticket_updated", "req-agent", number)
    assert {(c.field, c.old, c.new) for c in data.changes} == {("status", "new", "pending")}
    data = assert_envelope(envelopes[2], tap.messages[2][1], "status_changed", "req-agent", number)
    assert (data.from_status, data.to_status) == ("new", "pending")
    data = assert_envelope(envelopes[3], tap.messages[3][1], "message_added", "req-carol", number)
    assert (data.message.body, data.message.visibility, data.message.author) == (
        "Here is the log", "public", "carol")
    assert data.ticket.status == "open"  # the customer's reply took it back to open
    data = assert_envelope(envelopes[4], tap.messages[4][1], "status_changed", "req-carol", number)
    assert (data.from_status, data.to_status) == ("pending", "open")
    assert len({e["id"] for e in envelopes}) == 5

    # every outbox row was marked published once the broker confirmed it
    def all_published():
        with sessions() as session:
            rows = session.execute(select(Outbox.event_id, Outbox.published_at)
                                   .where(Outbox.event_type.notlike("contact_%"))).all()
        return len(rows) == 5 and all(published for _, published in rows) and rows
    rows = wait_for(all_published, message="outbox rows marked published")
    assert {event_id for event_id, _ in rows} == {e["id"] for e in envelopes}

    # an idempotent repeat answers the same ticket and announces nothing new: the next event is ours
    again = tickets.create_ticket(TICKET, CUSTOMER, idempotency_key="form-1")
    assert again["created"] is False and again["ticket"]["number"] == number
    tickets.update_ticket(number, {"priority": "high"}, AGENT)
    envelopes = tap.wait_for(lambda got: len(got) >= 6)
    assert [e["type"] for e in envelopes[5:]] == ["ticket_updated"]

    # reads over RPC
    assert tickets.get_ticket(number, CUSTOMER)["priority"] == "high"
    assert [m["body"] for m in tickets.list_messages(number, CUSTOMER)] == ["Here is the log"]
    page = tickets.list_tickets({"requester": "carol@example.com"}, AGENT)
    assert [t["number"] for t in page["items"]] == [number]


def test_remote_errors_arrive_as_the_shared_error_classes(tickets, tap):
    number = tickets.create_ticket(TICKET, AGENT)["ticket"]["number"]
    tickets.update_ticket(number, {"status": "closed"}, AGENT)

    with pytest.raises(InvalidTransition) as caught:
        tickets.update_ticket(number, {"status": "open"}, AGENT)
    error = caught.value
    assert not isinstance(error, RemoteError) and isinstance(error, HelpdeskError)
    assert error.code == "invalid_transition" and error.status == 409
    assert error.details == [{"field": "status", "code": "invalid_transition", "from": "closed", "to": "open",
                              "allowed": []}]
    assert "closed" in str(error)

    with pytest.raises(ValidationFailed) as caught:
        tickets.create_ticket({**TICKET, "colour": "red", "requester": {"email": "nope"}}, AGENT)
    assert {(d["field"], d["code"]) for d in caught.value.details} == {
        ("colour", "unknown_field"), ("requester.email", "invalid_value")}

    with pytest.raises(NotFound) as caught:
        tickets.get_ticket("T1999-00001", AGENT)
    assert caught.value.code == "ticket_not_found"

    with pytest.raises(Forbidden) as caught:
        tickets.update_ticket(number, {"priority": "low"}, {**CUSTOMER, "email": "carol@example.com"})
    assert caught.value.code == "agents_only"

    # the failed commands announced nothing: after the two good ones, the next event is the sentinel
    tickets.update_ticket(number, {"priority": "high"}, {**AGENT, "correlation_id": "sentinel"})
    types = [e["type"] for e in tap.wait_for(lambda got: any(e["correlation_id"] == "sentinel" for e in got))]
    assert types == ["ticket_created", "ticket_updated", "status_changed", "ticket_updated"]


def test_custom_fields_and_workflow_over_rpc(tickets, tap):
    assert tickets.define_custom_field({"name": "plan", "label": "Plan", "type": "enum",
                                        "options": ["free", "pro"], "required": True})["name"] == "plan"
    assert [f["name"] for f in tickets.list_custom_fields()] == ["plan"]
    with pytest.raises(ValidationFailed) as caught:
        tickets.create_ticket(TICKET, AGENT)
    assert caught.value.details[0] == {"field": "custom_fields.plan", "code": "missing",
                                       "message": "'Plan' is required"}
    created = tickets.create_ticket({**TICKET, "custom_fields": {"plan": "pro"}}, AGENT)
    assert created["ticket"]["custom_fields"] == {"plan": "pro"}
    envelope = tap.wait_for_types(["ticket_created"])[0]
    assert envelope["data"]["ticket"]["custom_fields"] == {"plan": "pro"}
    assert tickets.get_workflow()["initial"] == "new"
    assert tickets.ping() == {"service": "tickets", "ok": True}


def test_add_message_with_an_idempotency_key_over_rpc(tickets):
    number = tickets.create_ticket(TICKET, CUSTOMER)["ticket"]["number"]
    first = tickets.add_message(number, {"body": "Any news?"}, CUSTOMER, idempotency_key="email:<m1@example.com>")
    again = tickets.add_message(number, {"body": "Any news?"}, CUSTOMER, idempotency_key="email:<m1@example.com>")
    assert again == first
    assert [m["id"] for m in tickets.list_messages(number, AGENT)] == [first["id"]]
    with pytest.raises(ValidationFailed) as bad:
        tickets.add_message(number, {"body": "x"}, CUSTOMER, idempotency_key="k" * 201)
    assert bad.value.code == "validation_failed"


def publish_decision(amqp_uri, envelope):
    """What routing's outbox relay does with one row."""
    publish_events(amqp_uri, [envelope], source="routing")


def test_routing_decisions_waiting_in_the_queue_are_applied_in_batches_and_a_bad_one_fails_alone(
        container_factory, config, sessions):
    """Thirty decisions (three delivered twice, one about a ticket that does not exist) wait in the tickets
    service's queue while it is down; when it starts they go through the write-back's group commit: each
    good decision applied once, the bad one failing alone (its neighbours unharmed)."""
    from helpdesk_common.adapters.group_commit import BATCH_FAILURES, BATCH_SIZE
    from helpdesk_tickets.models import HistoryRecord, Ticket

    first = container_factory(TicketsService, config)
    first.start()  # declares the queues
    with ServiceRpcProxy("tickets", config, timeout=15) as proxy:
        numbers = [proxy.create_ticket(TICKET, AGENT)["ticket"]["number"] for _ in range(29)]
    first.stop()
    decisions = [{"id": str(uuid.uuid4()), "type": "ticket_assigned", "source": "routing", "correlation_id": f"c-{n}",
                  "data": {"ticket_number": number, "assignee": f"agent-{n}", "team": "desk", "tier": 1,
                           "reason": "least loaded", "assigned_at": "2026-11-22T10:00:00+00:00",
                           "agent": {"id": n, "name": f"A{n}", "email": f"a{n}@example.com"}}}
                 for n, number in enumerate(numbers)]
    bad = {**decisions[5], "id": str(uuid.uuid4()), "data": {**decisions[5]["data"], "ticket_number": "T1999-99999"}}
    for envelope in decisions[:10] + [bad] + decisions[10:] + decisions[:3]:
        publish_decision(config["AMQP_URI"], envelope)
    sizes, batches = BATCH_SIZE.labels("tickets")._sum.get(), sum(
        b.get() for b in BATCH_SIZE.labels("tickets")._buckets)
    failures = BATCH_FAILURES.labels("tickets")._value.get()

    container_factory(TicketsService, config).start()

    def assigned():
        with sessions() as session:
            return dict(session.execute(select(Ticket.number, Ticket.assignee).where(Ticket.assignee.is_not(None))).all())
    wait_for(lambda: len(assigned()) == len(numbers), timeout=30, message="every decision applied")
    assert assigned() == {number: f"agent-{n}" for n, number in enumerate(numbers)}
    wait_for(lambda: BATCH_FAILURES.labels("tickets")._value.get() > failures, timeout=10,
             message="the batch with the bad decision rerun one by one")
    with sessions() as session:
        recorded = list(session.scalars(select(HistoryRecord.field).where(HistoryRecord.field == "ticket_assigned")))
        echoes = [row.envelope for row in session.scalars(select(Outbox).where(Outbox.event_type == "ticket_updated"))]
    assert len(recorded) == len(numbers) and len(echoes) == len(numbers)  # the repeats took no effect
    assert {e["data"]["actor"] for e in echoes} == {"routing"}
    # every delivery goes through it (the three repeats, last in the queue, may still be on their way)
    wait_for(lambda: BATCH_SIZE.labels("tickets")._sum.get() - sizes >= len(numbers) + 4, timeout=10,
             message="every delivery handled by the write-back")
    handled = BATCH_SIZE.labels("tickets")._sum.get() - sizes
    count = sum(b.get() for b in BATCH_SIZE.labels("tickets")._buckets) - batches
    assert handled >= len(numbers) + 4 and count < handled  # some together


def test_the_workspace_pages_reads_answer_what_the_single_reads_answer(tickets):
    admin = {"actor": "ada", "role": "admin"}
    number = tickets.create_ticket({**TICKET, "team": "network"}, admin)["ticket"]["number"]
    tickets.create_ticket(TICKET, admin)
    query = {"view": "all", "sort": "updated", "limit": 25}
    listed = tickets.get_ticket_list_page(query, admin)  # (SLA seconds left differ between calls: compare the rest)
    alone = tickets.list_tickets(query, admin)
    assert [t["number"] for t in listed["page"]["items"]] == [t["number"] for t in alone["items"]]
    assert listed["page"]["next_cursor"] == alone["next_cursor"] and listed["counts"] == tickets.count_tickets(admin)
    page = tickets.get_ticket_page(number, admin)
    assert {k: v for k, v in page["ticket"].items() if k != "sla"} == {
        k: v for k, v in tickets.get_ticket(number, admin).items() if k != "sla"}
    assert (page["messages"], page["history"]) == (tickets.list_messages(number, admin), tickets.get_history(number, admin))
    assert [t["number"] for t in page["other_tickets"]] != [number] and len(page["other_tickets"]) == 1
    with pytest.raises(NotFound):
        tickets.get_ticket_page(number, {"actor": "al", "role": "agent", "teams": ["billing"]})
