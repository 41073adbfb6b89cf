"""The workflow state machine: built-in transitions, reopening, final states, custom workflow files."""
import itertools

import pytest
from sqlalchemy import select

from helpdesk_common.contracts.tickets import NewMessage, TicketChanges
from helpdesk_common.errors import InvalidTransition, ValidationFailed
from ticket_changes import change_ticket
from helpdesk_tickets import domain
from helpdesk_tickets.exceptions import WorkflowError
from helpdesk_tickets.models import Ticket
from helpdesk_tickets.workflow import Workflow

# The built-in workflow, written out independently of workflow.yaml so a change to it is noticed.
BUILT_IN = {
    "new": {"open", "in_progress", "pending", "resolved", "closed"},
    "open": {"in_progress", "pending", "resolved", "closed"},
    "in_progress": {"open", "pending", "resolved", "closed"},
    "pending": {"open", "in_progress", "resolved", "closed"},
    "resolved": {"open", "closed"},
    "closed": set(),
}
ALL_PAIRS = list(itertools.product(BUILT_IN, BUILT_IN))
ALLOWED = [(a, b) for a, b in ALL_PAIRS if b in BUILT_IN[a]]
FORBIDDEN = [(a, b) for a, b in ALL_PAIRS if b not in BUILT_IN[a]]


@pytest.fixture(scope="module")
def workflow():
    return Workflow.load()


def test_built_in_workflow_has_the_documented_shape(workflow):
    assert workflow.initial == "new"
    assert workflow.statuses == list(BUILT_IN)
    assert {name: set(targets) for name, targets in workflow.transitions.items()} == BUILT_IN
    assert {s: workflow.category(s) for s in workflow.statuses} == {
        "new": "new", "open": "open", "in_progress": "open", "pending": "pending",
        "resolved": "resolved", "closed": "closed"}
    described = workflow.describe()
    assert described["initial"] == "new"
    assert [s["name"] for s in described["statuses"]] == list(BUILT_IN)
    assert all(s["next"] == sorted(BUILT_IN[s["name"]]) for s in described["statuses"])


@pytest.mark.parametrize("current,target", ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_allowed_transition_passes(workflow, current, target):
    assert workflow.check(current, target) is None


@pytest.mark.parametrize("current,target", FORBIDDEN, ids=[f"{a}->{b}" for a, b in FORBIDDEN])
def test_forbidden_transition_is_rejected(workflow, current, target):
    with pytest.raises(InvalidTransition) as caught:
        workflow.check(current, target)
    error = caught.value
    assert error.code == "invalid_transition"
    assert error.status == 409
    assert error.details == [{"field": "status", "code": "invalid_transition", "from": current,
                              "to": target, "allowed": sorted(BUILT_IN[current])}]
    assert repr(current) in error.message and repr(target) in error.message


def test_forbidden_pairs_cover_every_status_pair():
    assert len(ALLOWED) + len(FORBIDDEN) == 36
    assert len(ALLOWED) == 19


def test_unknown_target_status_is_a_validation_error(workflow):
    with pytest.raises(ValidationFailed) as caught:
        workflow.check("open", "escalated")
    assert caught.value.details[0]["code"] == "invalid_choice"


def test_status_unknown_to_the_workflow_cannot_move(workflow):
    with pytest.raises(InvalidTransition):
        workflow.check("legacy_status", "open")


def test_reopening_is_leaving_resolved_or_closed_for_a_working_status(workflow):
    assert workflow.is_reopening("resolved", "open")
    assert not workflow.is_reopening("resolved", "closed")
    assert not workflow.is_reopening("pending", "open")
    assert not workflow.is_reopening("open", "resolved")


# --- the workflow applied to tickets on a real database ------------------------------------------

def _change(sessions, rules, viewer, number, **changes):
    return change_ticket(sessions, rules, viewer, number, **changes)


def _ticket(sessions, number):
    with sessions() as session:
        return session.scalar(select(Ticket).where(Ticket.number == number))


def test_new_ticket_starts_in_the_initial_status(open_ticket):
    assert open_ticket()["status"] == "new"


def test_resolving_then_reopening_counts_and_clears_resolved_at(sessions, rules, admin, open_ticket):
    number = open_ticket()["number"]
    resolved = _change(sessions, rules, admin, number, status="resolved")
    assert resolved["resolved_at"] is not None
    assert _ticket(sessions, number).reopen_count == 0

    reopened = _change(sessions, rules, admin, number, status="open")
    assert reopened["status"] == "open"
    assert reopened["resolved_at"] is None
    assert _ticket(sessions, number).reopen_count == 1

    _change(sessions, rules, admin, number, status="resolved")
    _change(sessions, rules, admin, number, status="open")
    assert _ticket(sessions, number).reopen_count == 2


def test_closing_sets_closed_at_and_resolved_at(sessions, rules, admin, open_ticket):
    number = open_ticket()["number"]
    closed = _change(sessions, rules, admin, number, status="closed")
    assert closed["closed_at"] is not None
    assert closed["resolved_at"] == closed["closed_at"]


@pytest.mark.parametrize("target", ["new", "open", "in_progress", "pending", "resolved"])
def test_closed_is_final(sessions, rules, admin, open_ticket, target):
    number = open_ticket()["number"]
    _change(sessions, rules, admin, number, status="closed")
    with pytest.raises(InvalidTransition) as caught:
        _change(sessions, rules, admin, number, status=target)
    assert caught.value.details[0]["allowed"] == []
    assert _ticket(sessions, number).status == "closed"


def test_forbidden_transition_changes_nothing(sessions, rules, admin, open_ticket, outbox_rows):
    number = open_ticket()["number"]
    _change(sessions, rules, admin, number, status="resolved")
    before = len(outbox_rows())
    with pytest.raises(InvalidTransition):
        # the whole update is refused: not the status, and not the priority given with it
        _change(sessions, rules, admin, number, status="pending", priority="urgent")
    ticket = _ticket(sessions, number)
    assert (ticket.status, ticket.priority) == ("resolved", "normal")
    assert len(outbox_rows()) == before


# --- custom workflow files ----------------------------------------------------------------------

CUSTOM = """
initial: triage
statuses:
  triage:   {category: new,      next: [working, rejected]}
  working:  {category: open,     next: [waiting, done]}
  waiting:  {category: pending,  next: [working, done]}
  done:     {category: resolved, next: [working, archived]}
  rejected: {category: closed}
  archived: {category: closed,   next: []}
"""


def test_custom_workflow_file_loads_and_drives_tickets(tmp_path, sessions, admin, customer, new_ticket):
    path = tmp_path / "workflow.yaml"
    path.write_text(CUSTOM)
    workflow = Workflow.load(str(path))
    assert workflow.initial == "triage"
    assert workflow.statuses == ["triage", "working", "waiting", "done", "rejected", "archived"]
    assert workflow.transitions["rejected"] == ()
    with pytest.raises(InvalidTransition):
        workflow.check("triage", "done")

    rules = domain.Rules(workflow=workflow, number_format="C-{seq}")
    with sessions.begin() as session:
        view, _ = domain.open_ticket(session, new_ticket(), admin, rules)
    assert view["status"] == "triage" and view["number"] == "C-1"
    _change(sessions, rules, admin, view["number"], status="working")
    _change(sessions, rules, admin, view["number"], status="waiting")
    with sessions.begin() as session:  # the customer answers: back to the working status
        domain.add_message(session, view["number"], NewMessage(body="here you go"), customer, rules)
    assert _ticket(sessions, view["number"]).status == "working"
    _change(sessions, rules, admin, view["number"], status="done")
    reopened = _change(sessions, rules, admin, view["number"], status="working")
    assert reopened["resolved_at"] is None
    assert _ticket(sessions, view["number"]).reopen_count == 1


BROKEN = {
    "empty file": "",
    "no initial": "statuses: {a: {category: new}}",
    "no statuses": "initial: a",
    "statuses not a mapping": "initial: a\nstatuses: [a, b]",
    "status without category": "initial: a\nstatuses: {a: {next: []}}",
    "status not a mapping": "initial: a\nstatuses: {a: new}",
    "initial not a status": "initial: z\nstatuses: {a: {category: new}}",
    "unknown category": "initial: a\nstatuses: {a: {category: limbo}}",
    "next to an unknown status": "initial: a\nstatuses: {a: {category: new, next: [b]}}",
    "next as a bare word": "initial: a\nstatuses: {a: {category: new, next: open}, open: {category: open}}",
    "next not a list": "initial: a\nstatuses: {a: {category: new, next: 3}}",
}


@pytest.mark.parametrize("text", list(BROKEN.values()), ids=list(BROKEN))
def test_broken_workflow_file_raises_workflow_error(tmp_path, text):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(WorkflowError):
        Workflow.load(str(path))


def test_targets_keep_the_order_written_in_the_file(workflow):
    """Where several targets fit (a customer's reply to a pending ticket), the first listed wins.

    They were a frozenset: which "open" status a reply chose depended on PYTHONHASHSEED.
    """
    assert workflow.transitions["pending"] == ("open", "in_progress", "resolved", "closed")
    assert workflow.transitions["new"] == ("open", "in_progress", "pending", "resolved", "closed")
