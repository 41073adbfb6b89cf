"""Shared fixtures of the tickets tests: a migrated database per test, rules, viewers, helpers."""
import os
import sys

import pytest
from sqlalchemy import func, select

from helpdesk_common.contracts.tickets import NewTicket, Viewer
from helpdesk_common.testing import database_fixtures
from helpdesk_tickets import domain
from helpdesk_tickets.migrate import upgrade
from helpdesk_tickets.models import Outbox
from helpdesk_tickets.workflow import Workflow

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the tests' helper modules (ticket_changes)

NUMBER_FORMAT = "T{year}-{seq:05d}"


# db_url: a migrated database of its own for each test, on SQLite and on PostgreSQL; sessions: on it.
db_url, sessions = database_fixtures("tickets", upgrade)


@pytest.fixture
def rules():
    return domain.Rules(workflow=Workflow.load(), number_format=NUMBER_FORMAT)


@pytest.fixture
def admin():
    return Viewer(actor="ada", role="admin", correlation_id="corr-admin")


@pytest.fixture
def agent():
    return Viewer(actor="alan", role="agent")


@pytest.fixture
def customer():
    return Viewer(actor="carol", role="customer", email="carol@example.com")


@pytest.fixture
def other_customer():
    return Viewer(actor="dave", role="customer", email="dave@example.com")


def ticket_body(**overrides):
    body = {"subject": "Printer on fire", "description": "It is on fire.",
            "requester": {"email": "carol@example.com", "name": "Carol"}}
    body.update(overrides)
    return body


def _new_ticket(**overrides):
    return NewTicket.model_validate(ticket_body(**overrides))


@pytest.fixture
def new_ticket():
    """Build a valid NewTicket command; keyword arguments replace or add fields."""
    return _new_ticket


@pytest.fixture
def open_ticket(sessions, rules, admin):
    """Open a ticket in its own committed transaction; returns its view."""

    def make(viewer=None, **overrides):
        with sessions.begin() as session:
            view, created = domain.open_ticket(session, _new_ticket(**overrides), viewer or admin, rules)
        assert created
        return view

    return make


@pytest.fixture
def outbox_rows(sessions):
    """Read the outbox rows, oldest first (optionally of one event type)."""

    def read(event_type=None):
        with sessions() as session:
            query = select(Outbox).order_by(Outbox.seq)
            if event_type:
                query = query.where(Outbox.event_type == event_type)
            return list(session.scalars(query))

    return read


@pytest.fixture
def count_rows(sessions):
    """Count the rows of a model's table."""

    def count(model):
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(model))

    return count
