"""Custom fields: definitions made with custom_fields.define, values checked on open and on update."""
import pytest
from sqlalchemy import select

from helpdesk_common.contracts.tickets import NewCustomField, TicketChanges
from helpdesk_common.errors import Conflict, ValidationFailed
from helpdesk_tickets import custom_fields, domain
from helpdesk_tickets.models import Outbox, Ticket

DEFINITIONS = [
    {"name": "account", "label": "Account", "type": "string"},
    {"name": "amount", "label": "Amount", "type": "number"},
    {"name": "seats", "label": "Seats", "type": "integer"},
    {"name": "vip", "label": "VIP", "type": "boolean"},
    {"name": "plan", "label": "Plan", "type": "enum", "options": ["free", "pro"]},
    {"name": "due", "label": "Due date", "type": "date"},
]

GOOD = {
    "account": ["acme", ""],
    "amount": [3, 2.5, -1, 0],
    "seats": [0, 12],
    "vip": [True, False],
    "plan": ["free", "pro"],
    "due": ["2024-02-29"],
}
BAD = {
    "account": [5, True, ["acme"], {"a": 1}, "x" * 2001],
    "amount": ["3", True, None, [1]],
    "seats": [1.5, "12", True, False],
    "vip": ["true", 1, 0, None],
    "plan": ["enterprise", "PRO", 1, None],
    "due": ["2023-02-29", "tomorrow", 20240101, "29/02/2024", None],
}


def _define(sessions, **fields):
    with sessions.begin() as session:
        return custom_fields.define(session, NewCustomField.model_validate(fields))


@pytest.fixture
def defined(sessions):
    for definition in DEFINITIONS:
        _define(sessions, **definition)


def _open(sessions, rules, admin, new_ticket, values):
    with sessions.begin() as session:
        return domain.open_ticket(session, new_ticket(custom_fields=values), admin, rules)[0]


def _change(sessions, rules, viewer, number, values):
    with sessions.begin() as session:
        return domain.change_ticket(session, number, TicketChanges(custom_fields=values), viewer, rules)


def test_define_and_list_definitions(sessions):
    view = _define(sessions, name="plan", label="Plan", type="enum", options=["free", "pro"], required=True)
    assert view == {"name": "plan", "label": "Plan", "type": "enum", "required": True, "options": ["free", "pro"]}
    _define(sessions, name="account", label="Account", type="string")
    with sessions() as session:
        assert [d["name"] for d in custom_fields.all_definitions(session)] == ["account", "plan"]


def test_a_name_is_defined_once(sessions):
    _define(sessions, name="plan", label="Plan", type="string")
    with pytest.raises(Conflict) as caught:
        _define(sessions, name="plan", label="Plan again", type="integer")
    assert caught.value.code == "custom_field_exists"


def test_enum_needs_options(sessions):
    with pytest.raises(ValidationFailed) as caught:
        _define(sessions, name="plan", label="Plan", type="enum")
    assert caught.value.details[0]["field"] == "options"
    with sessions() as session:
        assert custom_fields.all_definitions(session) == []


@pytest.mark.parametrize("name,value", [(n, v) for n, values in GOOD.items() for v in values])
def test_value_of_the_right_type_is_kept(sessions, rules, admin, new_ticket, defined, name, value):
    view = _open(sessions, rules, admin, new_ticket, {name: value})
    assert view["custom_fields"] == {name: value}


@pytest.mark.parametrize("name,value", [(n, v) for n, values in BAD.items() for v in values],
                         ids=[f"{n}={str(v)[:12]}" for n, values in BAD.items() for v in values])
def test_value_of_the_wrong_type_is_rejected(sessions, rules, admin, new_ticket, defined, count_rows,
                                             name, value):
    with pytest.raises(ValidationFailed) as caught:
        _open(sessions, rules, admin, new_ticket, {name: value})
    assert caught.value.details == [{"field": f"custom_fields.{name}", "code": "invalid_custom_field",
                                     "message": caught.value.details[0]["message"]}]
    assert caught.value.details[0]["message"].startswith("must be")
    assert count_rows(Ticket) == 0 and count_rows(Outbox) == 0


def test_unknown_field_is_rejected(sessions, rules, admin, new_ticket, defined):
    with pytest.raises(ValidationFailed) as caught:
        _open(sessions, rules, admin, new_ticket, {"colour": "red", "account": "acme"})
    [problem] = caught.value.details
    assert problem["field"] == "custom_fields.colour" and problem["code"] == "unknown_custom_field"
    assert "account" in problem["message"]  # names the fields that do exist


def test_unknown_field_when_none_are_defined(sessions, rules, admin, new_ticket):
    with pytest.raises(ValidationFailed) as caught:
        _open(sessions, rules, admin, new_ticket, {"colour": "red"})
    assert caught.value.details[0]["code"] == "unknown_custom_field"


def test_every_problem_is_listed_at_once(sessions, rules, admin, new_ticket, defined):
    with pytest.raises(ValidationFailed) as caught:
        _open(sessions, rules, admin, new_ticket, {"colour": "red", "seats": "many", "vip": "yes"})
    assert sorted((d["field"], d["code"]) for d in caught.value.details) == [
        ("custom_fields.colour", "unknown_custom_field"), ("custom_fields.seats", "invalid_custom_field"),
        ("custom_fields.vip", "invalid_custom_field")]


def test_required_field_must_be_given(sessions, rules, admin, new_ticket, count_rows):
    _define(sessions, name="plan", label="Plan", type="enum", options=["free", "pro"], required=True)
    with pytest.raises(ValidationFailed) as caught:
        _open(sessions, rules, admin, new_ticket, {})
    assert caught.value.details == [{"field": "custom_fields.plan", "code": "missing",
                                     "message": "'Plan' is required"}]
    assert count_rows(Ticket) == 0
    assert _open(sessions, rules, admin, new_ticket, {"plan": "pro"})["custom_fields"] == {"plan": "pro"}


def test_update_merges_checks_and_removes_values(sessions, rules, admin, agent, new_ticket, defined):
    number = _open(sessions, rules, admin, new_ticket, {"account": "acme", "seats": 3})["number"]
    view = _change(sessions, rules, agent, number, {"seats": 5, "vip": True})
    assert view["custom_fields"] == {"account": "acme", "seats": 5, "vip": True}
    view = _change(sessions, rules, agent, number, {"account": None})
    assert view["custom_fields"] == {"seats": 5, "vip": True}
    with pytest.raises(ValidationFailed):
        _change(sessions, rules, agent, number, {"seats": "six"})
    with pytest.raises(ValidationFailed):
        _change(sessions, rules, agent, number, {"colour": "red"})
    with sessions() as session:
        assert session.scalar(select(Ticket.custom_fields).where(Ticket.number == number)) == {
            "seats": 5, "vip": True}


def test_required_field_cannot_be_removed(sessions, rules, admin, agent, new_ticket):
    _define(sessions, name="plan", label="Plan", type="enum", options=["free", "pro"], required=True)
    number = _open(sessions, rules, admin, new_ticket, {"plan": "free"})["number"]
    with pytest.raises(ValidationFailed) as caught:
        _change(sessions, rules, agent, number, {"plan": None})
    assert caught.value.details[0]["code"] == "missing"
    assert _change(sessions, rules, agent, number, {"plan": "pro"})["custom_fields"] == {"plan": "pro"}
