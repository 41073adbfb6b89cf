"""The rules of a ticket's life on a real (SQLite) database: numbers, history, outbox, idempotency,
updates and messages."""
import uuid
from datetime import datetime

import pytest
from sqlalchemy import select

from helpdesk_common.contracts.tickets import NewMessage, TicketChanges, TicketView, Viewer
from helpdesk_common.errors import Forbidden, ValidationFailed
from helpdesk_common.events import CATALOGUE, SPECVERSION
from ticket_changes import change_ticket
from helpdesk_tickets import domain
from helpdesk_tickets.models import Contact, HistoryRecord, IdempotencyKey, Message, MessageKey, Outbox, Ticket


def _history(sessions, number):
    with sessions() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        return [(r.actor, r.field, r.old, r.new) for r in session.scalars(
            select(HistoryRecord).where(HistoryRecord.ticket_id == ticket.id).order_by(HistoryRecord.id))]


def _ticket(sessions, number):
    with sessions() as session:
        return session.scalar(select(Ticket).where(Ticket.number == number))


def _change(sessions, rules, viewer, number, **changes):
    return change_ticket(sessions, rules, viewer, number, **changes)


def _reply(sessions, rules, viewer, number, body="hello", visibility="public"):
    with sessions.begin() as session:
        return domain.add_message(session, number, NewMessage(body=body, visibility=visibility), viewer, rules)


def assert_valid_envelope(row, event_type, number, correlation_id=None):
    envelope = row.envelope
    assert row.event_type == event_type and row.event_id == envelope["id"]
    assert row.published_at is None
    uuid.UUID(envelope["id"])
    assert envelope["type"] == event_type
    assert envelope["source"] == "tickets"
    assert envelope["specversion"] == SPECVERSION
    assert envelope["schema_version"] == CATALOGUE[event_type].schema_version
    assert envelope["subject"] == number
    assert envelope["correlation_id"] == correlation_id
    assert datetime.fromisoformat(envelope["time"]).utcoffset().total_seconds() == 0
    return CATALOGUE[event_type].data_model.model_validate(envelope["data"])


# --- opening tickets ----------------------------------------------------------------------------

def test_numbers_are_sequential_unique_and_formatted(open_ticket):
    views = [open_ticket(subject=f"ticket {i}") for i in range(3)]
    year = datetime.fromisoformat(views[0]["created_at"]).year
    assert [v["number"] for v in views] == [f"T{year}-{i:05d}" for i in (1, 2, 3)]


def test_default_number_format(sessions, admin, new_ticket):
    rules = domain.Rules(workflow=domain.Workflow.load())
    with sessions.begin() as session:
        view, _ = domain.open_ticket(session, new_ticket(), admin, rules)
    assert view["number"] == "HD-000001"


@pytest.mark.parametrize("number_format", [
    "T-{year}", "{seq", "T-{seq:q}", "T-{seq:.0}", "{year}-{other}-{seq}",
    "T-{{seq}}",  # contains "{seq" but renders the same text for every ticket
])
def test_malformed_number_format_fails_at_start_up(number_format):
    with pytest.raises((ValueError, KeyError)):
        domain.Rules(workflow=domain.Workflow.load(), number_format=number_format)


def test_open_ticket_returns_the_ticket_records_history_and_stages_ticket_created(
        sessions, rules, admin, new_ticket, outbox_rows):
    command = new_ticket(priority="high", severity="major", channel="email", team="billing",
                         language="en", category="hardware", tags=["printer", "fire", "printer"])
    with sessions.begin() as session:
        view, created = domain.open_ticket(session, command, admin, rules)
        # staged in the very transaction that creates the ticket (and its new requester's contact)
        assert session.scalars(select(Outbox.event_type).order_by(Outbox.seq)).all() == [
            "contact_created", "ticket_created"]
    assert created is True
    assert view["status"] == "new" and view["priority"] == "high" and view["severity"] == "major"
    assert view["tags"] == ["printer", "fire"]  # duplicates dropped, order kept
    assert view["requester"] == {"email": "carol@example.com", "name": "Carol", "contact_id": 1, "contact_ambiguous": False,
                                 "organisation": None}
    assert view["first_response_at"] is None and view["resolved_at"] is None

    assert _history(sessions, view["number"]) == [
        ("ada", "created", None, {"channel": "email", "status": "new"})]
    [row] = outbox_rows("ticket_created")
    data = assert_valid_envelope(row, "ticket_created", view["number"], "corr-admin")
    assert data.ticket.number == view["number"]
    assert data.ticket == TicketView.model_validate(view)  # the whole ticket, as the API shows it


def test_rollback_leaves_neither_ticket_nor_outbox_row(sessions, rules, admin, new_ticket, count_rows):
    with pytest.raises(RuntimeError):
        with sessions.begin() as session:
            domain.open_ticket(session, new_ticket(), admin, rules)
            assert "ticket_created" in session.scalars(select(Outbox.event_type)).all()
            raise RuntimeError("the process fails before commit")
    for model in (Ticket, Outbox, HistoryRecord, Contact):
        assert count_rows(model) == 0


def test_requester_is_one_contact_per_email_case_insensitive(open_ticket, count_rows):
    open_ticket(requester={"email": "Carol@Example.com"})
    second = open_ticket(requester={"email": "carol@example.com", "name": "Carol C."})
    assert count_rows(Contact) == 1
    assert second["requester"] == {"email": "carol@example.com", "name": "Carol C.", "contact_id": 1,
                                   "contact_ambiguous": False, "organisation": None}


def test_customer_opens_tickets_only_for_themselves(sessions, rules, customer, new_ticket, count_rows):
    with sessions.begin() as session:
        view, created = domain.open_ticket(session, new_ticket(requester={"email": "CAROL@example.com"}),
                                           customer, rules)
    assert created and view["requester"]["email"] == "carol@example.com"
    with pytest.raises(Forbidden) as caught:
        with sessions.begin() as session:
            domain.open_ticket(session, new_ticket(requester={"email": "eve@example.com"}), customer, rules)
    assert caught.value.code == "requester_mismatch"
    assert count_rows(Ticket) == 1


@pytest.mark.parametrize("identifier", [{"phone": "+46 70 765 43 21"},
                                        {"social": {"platform": "mastodon", "handle": "victor"}}])
def test_a_customer_cannot_borrow_another_contacts_identifier(sessions, rules, admin, customer, new_ticket,
                                                             open_ticket, count_rows, identifier):
    victim = open_ticket(requester={"email": "victor@example.com", "name": "Victor",
                                    "phone": "+46707654321", "social": {"platform": "mastodon", "handle": "victor"}})
    contacts_before = count_rows(Contact)
    with pytest.raises(ValidationFailed) as caught:
        with sessions.begin() as session:
            domain.open_ticket(session, new_ticket(requester={"email": "carol@example.com", **identifier}),
                               customer, rules)
    assert caught.value.code == "customer_identifier_refused"
    assert caught.value.details[0]["field"] == f"requester.{next(iter(identifier))}"
    assert "victor" not in caught.value.message.lower()
    assert (count_rows(Ticket), count_rows(Contact)) == (1, contacts_before)  # no contact made on the way
    # agents and the platform's own channels still find contacts by them
    with sessions.begin() as session:
        view, _ = domain.open_ticket(session, new_ticket(requester={"email": "x@example.com", **identifier}),
                                     admin, rules)
    assert view["requester"]["contact_id"] == victim["requester"]["contact_id"]


def test_a_customers_channel_team_and_priority_are_ignored(sessions, rules, customer, new_ticket):
    with sessions.begin() as session:
        view, _ = domain.open_ticket(session, new_ticket(requester={"email": "carol@example.com"}, channel="phone",
                                                         team="vip", priority="urgent"), customer, rules)
    assert (view["channel"], view["team"], view["priority"]) == ("web", None, "normal")


def test_one_refused_customer_request_spoils_no_other_in_a_batch(sessions, rules, customer, admin, new_ticket):
    with sessions.begin() as session:
        outcomes = domain.open_tickets(session, [
            (new_ticket(requester={"email": "carol@example.com", "phone": "+46707654321"}), customer, None),
            (new_ticket(requester={"email": "carol@example.com"}, team="vip"), customer, None),
            (new_ticket(requester={"email": "y@example.com"}, team="vip"), admin, None)], rules)
    assert isinstance(outcomes[0], ValidationFailed)
    assert [outcome[0]["team"] for outcome in outcomes[1:]] == [None, "vip"]


# --- idempotency ---------------------------------------------------------------------------------

def _open_with_key(sessions, rules, viewer, command, key):
    with sessions.begin() as session:
        return domain.open_ticket(session, command, viewer, rules, idempotency_key=key)


def test_same_idempotency_key_and_body_returns_the_first_ticket(
        sessions, rules, admin, new_ticket, count_rows, outbox_rows):
    first, created = _open_with_key(sessions, rules, admin, new_ticket(), "key-1")
    again, created_again = _open_with_key(sessions, rules, admin, new_ticket(), "key-1")
    assert created is True and created_again is False
    assert again["number"] == first["number"]
    assert count_rows(Ticket) == 1 and count_rows(IdempotencyKey) == 1
    assert len(outbox_rows("ticket_created")) == 1  # the repeat announces nothing


def test_same_idempotency_key_with_a_different_body_is_rejected(sessions, rules, admin, new_ticket, count_rows):
    _open_with_key(sessions, rules, admin, new_ticket(), "key-1")
    with pytest.raises(ValidationFailed) as caught:
        _open_with_key(sessions, rules, admin, new_ticket(subject="Another printer"), "key-1")
    assert caught.value.code == "idempotency_key_reused"
    assert "key-1" in caught.value.message
    assert count_rows(Ticket) == 1


def test_idempotency_keys_belong_to_one_client(sessions, rules, admin, agent, new_ticket, count_rows):
    first, _ = _open_with_key(sessions, rules, admin, new_ticket(), "key-1")
    other, created = _open_with_key(sessions, rules, agent, new_ticket(), "key-1")
    assert created and other["number"] != first["number"]
    assert count_rows(Ticket) == 2


# --- changing tickets ----------------------------------------------------------------------------

def test_change_records_one_history_row_per_changed_field_and_stages_events(
        sessions, rules, agent, open_ticket, outbox_rows):
    number = open_ticket(tags=["a"])["number"]
    view = _change(sessions, rules, agent, number, status="in_progress", priority="urgent", assignee="alan",
                   team="billing", tier=2, tags=["a", "b", "b"], severity="critical")
    assert (view["status"], view["priority"], view["assignee"], view["team"], view["tier"], view["tags"]) == (
        "in_progress", "urgent", "alan", "billing", 2, ["a", "b"])
    assert view["version"] > 1

    changed = _history(sessions, number)[1:]
    # assignee, team and tier came as routing's decision (made by alan): applied first, and recorded with it
    decision = ("alan", "ticket_assigned", None, {"reason": "set by hand", "rule": None, "trigger": None})
    assert sorted(changed, key=repr) == sorted([
        ("alan", "status", "new", "in_progress"), ("alan", "priority", "normal", "urgent"),
        ("alan", "severity", None, "critical"), ("alan", "assignee", None, "alan"),
        ("alan", "team", None, "billing"), ("alan", "tier", 1, 2), ("alan", "tags", ["a"], ["a", "b"]), decision],
        key=repr)

    routing_applied, updated = outbox_rows("ticket_updated")
    data = assert_valid_envelope(routing_applied, "ticket_updated", number)
    assert {c.field: (c.old, c.new) for c in data.changes} == {
        "assignee": (None, "alan"), "team": (None, "billing"), "tier": (1, 2)}
    assert data.actor == "alan"
    data = assert_valid_envelope(updated, "ticket_updated", number)
    assert {c.field: (c.old, c.new) for c in data.changes} == {
        "status": ("new", "in_progress"), "priority": ("normal", "urgent"), "severity": (None, "critical"),
        "tags": (["a"], ["a", "b"])}
    assert data.ticket.status == "in_progress"
    [status] = outbox_rows("status_changed")
    data = assert_valid_envelope(status, "status_changed", number)
    assert (data.from_status, data.to_status, data.ticket.status) == ("new", "in_progress", "in_progress")


def test_unchanged_values_are_neither_recorded_nor_announced(sessions, rules, agent, open_ticket, outbox_rows):
    number = open_ticket(priority="high")["number"]
    before = len(outbox_rows())
    view = _change(sessions, rules, agent, number, priority="high", status="new", tags=[])
    assert view["priority"] == "high"
    assert len(_history(sessions, number)) == 1  # only "created"
    assert len(outbox_rows()) == before


def test_change_without_status_stages_no_status_changed(sessions, rules, agent, open_ticket, outbox_rows):
    number = open_ticket()["number"]
    _change(sessions, rules, agent, number, priority="low")
    assert len(outbox_rows("ticket_updated")) == 1
    assert outbox_rows("status_changed") == []


@pytest.mark.parametrize("field", ["status", "priority", "tier", "tags", "custom_fields"])
def test_null_is_rejected_for_fields_that_must_have_a_value(sessions, rules, agent, open_ticket, field):
    number = open_ticket()["number"]
    with pytest.raises(ValidationFailed) as caught:
        _change(sessions, rules, agent, number, **{field: None})
    assert caught.value.details == [{"field": field, "code": "null_not_allowed", "message": "give a value"}]


def test_null_clears_assignee_team_and_severity(sessions, rules, agent, open_ticket):
    number = open_ticket(team="billing", severity="minor")["number"]
    _change(sessions, rules, agent, number, assignee="alan")
    view = _change(sessions, rules, agent, number, assignee=None, team=None, severity=None)
    assert (view["assignee"], view["team"], view["severity"]) == (None, None, None)
    assert ("alan", "assignee", "alan", None) in _history(sessions, number)


def test_unknown_status_is_rejected(sessions, rules, agent, open_ticket):
    number = open_ticket()["number"]
    with pytest.raises(ValidationFailed) as caught:
        _change(sessions, rules, agent, number, status="escalated")
    assert caught.value.details[0]["code"] == "invalid_choice"


def test_changing_a_missing_ticket_is_not_found(sessions, rules, agent):
    from helpdesk_common.errors import NotFound

    with pytest.raises(NotFound) as caught:
        _change(sessions, rules, agent, "T2000-99999", priority="low")
    assert caught.value.code == "ticket_not_found"


def test_concurrent_change_of_the_same_ticket_is_detected(sessions, rules, agent, open_ticket):
    """Two workers load the same version; the second to save fails instead of overwriting."""
    from sqlalchemy.orm.exc import StaleDataError

    number = open_ticket()["number"]
    with sessions() as session:
        stale = session.scalar(select(Ticket).where(Ticket.number == number))
        session.expunge(stale)  # keeps the version it read
    _change(sessions, rules, agent, number, priority="low")
    with pytest.raises(StaleDataError):
        with sessions.begin() as session:
            session.add(stale)
            stale.priority = "urgent"
    assert _ticket(sessions, number).priority == "low"


# --- messages ------------------------------------------------------------------------------------

def test_first_public_agent_reply_sets_first_response_at(sessions, rules, agent, customer, open_ticket,
                                                        outbox_rows):
    number = open_ticket()["number"]
    _reply(sessions, rules, agent, number, visibility="internal")
    _reply(sessions, rules, customer, number)
    assert _ticket(sessions, number).first_response_at is None  # notes and customers do not count

    message = _reply(sessions, rules, agent, number, body="We are on it")
    first = _ticket(sessions, number).first_response_at
    assert first is not None and first == datetime.fromisoformat(message["created_at"])
    _reply(sessions, rules, agent, number, body="Still on it")
    assert _ticket(sessions, number).first_response_at == first
    assert [h for h in _history(sessions, number) if h[1] == "first_response_at"] == [
        ("alan", "first_response_at", None, first.isoformat())]

    rows = outbox_rows("message_added")
    assert len(rows) == 4
    data = assert_valid_envelope(rows[2], "message_added", number)
    assert data.message.body == "We are on it" and data.message.visibility == "public"
    assert data.message.author == "alan" and data.message.author_role == "agent"
    assert data.ticket.first_response_at == first


def test_customer_reply_takes_a_pending_ticket_back_to_open(sessions, rules, agent, customer, open_ticket,
                                                           outbox_rows):
    number = open_ticket()["number"]
    _change(sessions, rules, agent, number, status="pending")
    _reply(sessions, rules, customer, number, body="Here is the log")
    ticket = _ticket(sessions, number)
    assert ticket.status == "open"
    assert ("carol", "status", "pending", "open") in _history(sessions, number)
    [message_added] = outbox_rows("message_added")
    assert message_added.envelope["data"]["ticket"]["status"] == "open"
    status_rows = outbox_rows("status_changed")
    data = assert_valid_envelope(status_rows[-1], "status_changed", number)
    assert (data.from_status, data.to_status) == ("pending", "open")


def test_agent_reply_leaves_a_pending_ticket_pending(sessions, rules, agent, open_ticket, outbox_rows):
    number = open_ticket()["number"]
    _change(sessions, rules, agent, number, status="pending")
    _reply(sessions, rules, agent, number)
    assert _ticket(sessions, number).status == "pending"
    assert len(outbox_rows("status_changed")) == 1


def test_messages_are_listed_oldest_first_with_their_history(sessions, rules, agent, open_ticket):
    number = open_ticket()["number"]
    first = _reply(sessions, rules, agent, number, body="one")
    second = _reply(sessions, rules, agent, number, body="two", visibility="internal")
    with sessions() as session:
        listed = domain.list_messages(session, number, agent)
        entries = domain.history(session, number, agent)
    assert [m["body"] for m in listed] == ["one", "two"]
    assert [m["id"] for m in listed] == [first["id"], second["id"]]
    assert [(e["field"], e["new"]) for e in entries if e["field"].startswith("message.")] == [
        ("message.public", first["id"]), ("message.internal", second["id"])]
    assert all(set(e) == {"at", "actor", "field", "old", "new"} for e in entries)
    with sessions() as session:
        assert session.query(Message).count() == 2


def test_a_repeated_message_idempotency_key_returns_the_first_message(sessions, rules, agent, admin, open_ticket):
    number, other = open_ticket()["number"], open_ticket()["number"]

    def reply(body, viewer=agent, ticket=number, key="email:abc"):
        with sessions.begin() as session:
            return domain.add_message(session, ticket, NewMessage(body=body), viewer, rules, idempotency_key=key)

    first = reply("Fixed in 2.3.1")
    assert reply("Fixed in 2.3.1") == first  # e.g. intake retrying after a crash
    with pytest.raises(ValidationFailed) as refused:
        reply("Something else")  # the same key for another message is a client's mistake, not a repeat
    assert refused.value.code == "idempotency_key_reused"
    with pytest.raises(ValidationFailed):
        reply("Fixed in 2.3.1", ticket=other)
    assert reply("Fixed in 2.3.1", viewer=admin)["id"] != first["id"]  # keys belong to their author
    with sessions() as session:
        assert session.query(Message).count() == 2
        assert session.query(Outbox).filter(Outbox.event_type == "message_added").count() == 2
        assert session.scalar(select(MessageKey).where(MessageKey.key == "email:abc",
                                                       MessageKey.client == agent.actor)).message_id == first["id"]


def test_system_actor_may_change_tickets(sessions, rules, open_ticket):
    system = Viewer(actor="sla", role="system")
    number = open_ticket()["number"]
    assert _change(sessions, rules, system, number, priority="high")["priority"] == "high"


@pytest.mark.parametrize("field, value", [("assignee", "alan"), ("team", "billing"), ("tier", 2)])
def test_assignee_team_and_tier_are_refused_without_routing(sessions, rules, agent, open_ticket, field, value):
    """Routing is their one writer: given to the tickets service directly, they are refused, nothing changes."""
    number = open_ticket()["number"]
    with pytest.raises(ValidationFailed) as caught:
        with sessions.begin() as session:
            domain.change_ticket(session, number, TicketChanges.model_validate({field: value, "priority": "high"}),
                                 agent, rules)
    assert caught.value.code == "set_by_routing"
    with sessions() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert (ticket.assignee, ticket.team, ticket.tier, ticket.priority) == (None, None, 1, "normal")
