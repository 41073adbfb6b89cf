"""Shared fixtures of the routing tests: a migrated database per test, a controllable clock, helpers."""
from contextlib import ExitStack
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from helpdesk_common.contracts.routing import NewAgent, NewRule, NewTeam
from helpdesk_common.testing import database_fixtures, scratch_postgres_database
from helpdesk_routing import batch, domain
from helpdesk_routing.migrate import upgrade
from helpdesk_routing.models import Outbox

MONDAY_NOON = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


# db_url: a migrated database of its own for each test, on SQLite and on PostgreSQL; sessions: on it.
db_url, sessions = database_fixtures("routing", upgrade)


@pytest.fixture
def settings():
    return domain.Settings(default_team=None)


class Clock:
    def __init__(self, now):
        self.now = now

    def ctx(self, actor="routing", correlation_id=None):
        return domain.Context(actor=actor, correlation_id=correlation_id, now=self.now)


@pytest.fixture
def clock():
    return Clock(MONDAY_NOON)


@pytest.fixture
def run(sessions, clock):
    """Run ``fn(session, *args, ctx)`` in its own committed transaction; returns its result."""

    def call(fn, *args, **kwargs):
        with sessions.begin() as session:
            return fn(session, *args, clock.ctx(), **kwargs)

    return call


@pytest.fixture
def team(sessions):
    def make(name, **fields):
        with sessions.begin() as session:
            return domain.create_team(session, NewTeam.model_validate({"name": name, **fields}))

    return make


@pytest.fixture
def agent(run):
    def make(name, **fields):
        body = {"name": name, "email": f"{name.lower()}@example.com", "presence": "online", **fields}
        return run(domain.create_agent, NewAgent.model_validate(body))

    return make


@pytest.fixture
def rule(sessions):
    def make(name, conditions=None, **actions):
        body = {"name": name, "conditions": conditions or {}, "actions": actions}
        with sessions.begin() as session:
            return domain.add_rule(session, NewRule.model_validate(body))

    return make


_numbers = iter(range(1, 1_000_000))


def _ticket(number=None, **fields):
    """A TicketView as ``ticket_created`` carries it."""
    body = {"number": number or f"HD-{next(_numbers):06d}", "subject": "Printer broken",
            "description": "The printer does not print.", "requester": {"email": "eva@example.se", "name": "Eva"},
            "channel": "api", "priority": "normal", "status": "new", "team": None, "tier": 1, "assignee": None,
            "language": "en", "category": None, "tags": [], "custom_fields": {}, "version": 1,
            "created_at": MONDAY_NOON.isoformat(), "updated_at": MONDAY_NOON.isoformat()}
    body.update(fields)
    return body


@pytest.fixture
def ticket():
    """Build a TicketView as ``ticket_created`` carries it; keyword arguments replace fields."""
    return _ticket


@pytest.fixture
def route(run, settings):
    def call(**fields):
        view = _ticket(**fields)
        return run(lambda s, c: batch.route_new_ticket(s, view, settings, c.now, c.correlation_id))

    return call


@pytest.fixture
def events(sessions):
    """The outbox's envelopes, oldest first (optionally of some types)."""

    def read(*types):
        with sessions() as session:
            query = select(Outbox).order_by(Outbox.seq)
            if types:
                query = query.where(Outbox.event_type.in_(types))
            return [row.envelope for row in session.scalars(query)]

    return read


@pytest.fixture
def postgres_database():
    """Make throwaway PostgreSQL databases (dropped after the test): call it for each one's URL."""
    with ExitStack() as made:
        yield lambda: made.enter_context(scratch_postgres_database("routing_test", fast=True))
