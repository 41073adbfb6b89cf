"""A customer marks their own ticket solved, or reopens it, within the workflow; nothing else is theirs."""
import pytest

from helpdesk_common.errors import InvalidTransition, NotFound
from helpdesk_tickets import domain
from helpdesk_tickets.workflow import Workflow


def resolve(sessions, rules, viewer, number, solved):
    with sessions.begin() as session:
        return domain.customer_resolution(session, number, solved, viewer, rules)


def test_the_customer_solves_and_reopens_their_ticket_as_the_workflow_allows(sessions, rules, customer,
                                                                             open_ticket, outbox_rows):
    number = open_ticket()["number"]
    assert resolve(sessions, rules, customer, number, True)["status"] == "resolved"
    assert resolve(sessions, rules, customer, number, False)["status"] == "open"
    changes = [(row.envelope["data"]["from_status"], row.envelope["data"]["to_status"])
               for row in outbox_rows("status_changed")]
    assert changes == [("new", "resolved"), ("resolved", "open")]


def test_solved_twice_or_reopening_an_open_ticket_is_a_clear_409(sessions, rules, customer, open_ticket):
    number = open_ticket()["number"]
    with pytest.raises(InvalidTransition):
        resolve(sessions, rules, customer, number, False)
    resolve(sessions, rules, customer, number, True)
    with pytest.raises(InvalidTransition):
        resolve(sessions, rules, customer, number, True)


def test_another_customers_ticket_is_missing(sessions, rules, other_customer, open_ticket):
    number = open_ticket()["number"]
    with pytest.raises(NotFound) as missing:
        resolve(sessions, rules, other_customer, number, True)
    assert missing.value.code == "ticket_not_found"


def test_the_target_follows_the_organisations_workflow():
    workflow = Workflow.load()
    assert domain.customer_target(workflow, "pending", True) == "resolved"
    assert domain.customer_target(workflow, "closed", False) is None  # closed is final
    assert domain.customer_target(workflow, "closed", True) is None
