"""The service's entrypoints with nameko's worker_factory (no broker): they validate, then call the rules."""
from unittest import mock

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from helpdesk_common.errors import Conflict, ValidationFailed
from helpdesk_tickets.service import TicketsService

ADMIN = {"actor": "ada", "role": "admin"}
TICKET = {"subject": "Printer on fire", "description": "It is on fire.",
          "requester": {"email": "carol@example.com", "name": "Carol"}}


def _problems(error):
    return {(d["field"], d["code"]) for d in error.details}


@pytest.mark.parametrize("ticket,viewer,expected", [
    ({**TICKET, "colour": "red"}, ADMIN, {("colour", "unknown_field")}),
    ({**TICKET, "requester": {"email": "not-an-email"}}, ADMIN, {("requester.email", "invalid_value")}),
    ({"description": "d", "requester": {"email": "carol@example.com"}}, ADMIN, {("subject", "missing")}),
    ({**TICKET, "subject": 42}, ADMIN, {("subject", "wrong_type")}),
    ({**TICKET, "tags": "printer"}, ADMIN, {("tags", "wrong_type")}),
    ({**TICKET, "priority": "asap"}, ADMIN, {("priority", "invalid_choice")}),
    ({**TICKET, "subject": "   "}, ADMIN, {("subject", "too_short")}),
    (TICKET, {"actor": "ada"}, {("viewer.role", "missing")}),
    (TICKET, {**ADMIN, "role": "root"}, {("viewer.role", "invalid_choice")}),
    ({"subject": 1, "colour": "red", "requester": {}}, ADMIN,
     {("subject", "wrong_type"), ("colour", "unknown_field"), ("description", "missing"),
      ("requester.email", "missing")}),
])
def test_create_ticket_validates_its_input(ticket, viewer, expected):
    service = worker_factory(TicketsService)
    with pytest.raises(ValidationFailed) as caught:
        service.create_ticket(ticket, viewer)
    assert _problems(caught.value) == expected
    assert caught.value.code == "validation_failed" and caught.value.status == 422
    assert all(d["message"] for d in caught.value.details)
    service.db.begin.assert_not_called()  # nothing reached the database


def test_other_entrypoints_validate_too():
    service = worker_factory(TicketsService)
    with pytest.raises(ValidationFailed) as caught:
        service.update_ticket("T1", {"priority": None, "colour": "red", "tier": "2"}, ADMIN)
    assert _problems(caught.value) == {("colour", "unknown_field"), ("tier", "wrong_type")}
    with pytest.raises(ValidationFailed) as caught:
        service.add_message("T1", {"body": "hi", "visibility": "secret"}, ADMIN)
    assert _problems(caught.value) == {("visibility", "invalid_choice")}
    with pytest.raises(ValidationFailed) as caught:
        service.list_tickets({"limit": 1000}, ADMIN)
    assert _problems(caught.value) == {("limit", "out_of_range")}
    with pytest.raises(ValidationFailed) as caught:
        service.define_custom_field({"name": "Bad Name", "label": "x", "type": "string"})
    assert _problems(caught.value) == {("name", "invalid_format")}
    service.db.begin.assert_not_called()
    service.db.assert_not_called()


# --- with a real database and rules, still without a broker -------------------------------------

@pytest.fixture
def service(sessions, rules):
    return worker_factory(TicketsService, db=sessions, rules=rules)


def test_create_and_read_through_the_entrypoints(service):
    answer = service.create_ticket(TICKET, ADMIN, idempotency_key="k1")
    assert answer["created"] is True
    number = answer["ticket"]["number"]
    assert service.create_ticket(TICKET, ADMIN, idempotency_key="k1") == {**answer, "created": False}
    assert service.get_ticket(number, ADMIN)["subject"] == "Printer on fire"
    assert service.update_ticket(number, {"status": "open"}, ADMIN)["status"] == "open"
    assert [h["field"] for h in service.get_history(number, ADMIN)] == ["created", "status"]
    assert service.list_tickets({}, ADMIN)["items"][0]["number"] == number
    assert service.ping() == {"service": "tickets", "ok": True}
    assert service.get_workflow()["initial"] == "new"


def test_concurrent_change_becomes_a_conflict(service):
    number = service.create_ticket(TICKET, ADMIN)["ticket"]["number"]
    with mock.patch("helpdesk_tickets.domain.change_ticket", side_effect=StaleDataError("version mismatch")):
        with pytest.raises(Conflict) as caught:
            service.update_ticket(number, {"priority": "low"}, ADMIN)
    assert caught.value.code == "concurrent_change" and number in caught.value.message


def test_a_raced_unique_key_is_retried_once(service):
    from helpdesk_tickets import domain

    real = domain.open_ticket
    calls = []

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed: contacts.email"))
        return real(*args, **kwargs)

    with mock.patch("helpdesk_tickets.domain.open_ticket", side_effect=racing):
        answer = service.create_ticket(TICKET, ADMIN)
    assert answer["created"] and len(calls) == 2

    with mock.patch("helpdesk_tickets.domain.open_ticket",
                    side_effect=IntegrityError("INSERT", {}, Exception("still failing"))):
        with pytest.raises(IntegrityError):
            service.create_ticket(TICKET, ADMIN)


# --- the organisation's rules, read from config at start-up -------------------------------------

def _rules_from(mock_container, **config):
    from helpdesk_tickets.dependencies import TicketRules

    mock_container.config.update(config)
    provider = TicketRules().bind(mock_container, "rules")
    provider.setup()
    return provider.get_dependency(worker_ctx=None)


def test_rules_default_to_the_built_in_workflow_and_number_format(mock_container):
    rules = _rules_from(mock_container, WORKFLOW_FILE=None, TICKET_NUMBER_FORMAT="")
    assert rules.workflow.initial == "new" and rules.number_format == "HD-{seq:06d}"


def test_rules_come_from_the_config(mock_container, tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text("initial: todo\nstatuses:\n  todo: {category: new, next: [done]}\n"
                    "  done: {category: closed}\n")
    rules = _rules_from(mock_container, WORKFLOW_FILE=str(path), TICKET_NUMBER_FORMAT="X{seq}")
    assert rules.workflow.statuses == ["todo", "done"] and rules.number_format == "X{seq}"


def test_a_broken_workflow_or_number_format_stops_the_service_at_start_up(mock_container, tmp_path):
    from helpdesk_tickets.exceptions import WorkflowError

    path = tmp_path / "flow.yaml"
    path.write_text("initial: todo\nstatuses:\n  todo: {category: limbo}\n")
    with pytest.raises(WorkflowError):
        _rules_from(mock_container, WORKFLOW_FILE=str(path))
    with pytest.raises(ValueError):
        _rules_from(mock_container, WORKFLOW_FILE=None, TICKET_NUMBER_FORMAT="T-{year}")
