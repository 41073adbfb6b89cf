"""The gateway announces people's accounts (``account_changed``, through its outbox): analytics mails its weekly
summary to the supervisors and admins it learns of there, never reading the gateway's tables. Accounts made
before the event existed are announced once by the migration that brought it."""
import os
import tempfile

from sqlalchemy import insert, select
from sqlalchemy.orm import sessionmaker

from helpdesk_common.adapters.database import engine_for
from helpdesk_common.database import utcnow
from helpdesk_gateway import accounts
from helpdesk_gateway.cli import upgrade
from helpdesk_gateway.models import Account, Outbox

PASSWORD = "correct horse battery"


def announced(sessions):
    with sessions() as session:
        return [row.envelope["data"]["account"] for row in session.scalars(
            select(Outbox).where(Outbox.event_type == "account_changed").order_by(Outbox.seq))]


def test_an_account_made_or_changed_is_announced_with_it(sessions):
    sue = accounts.create_account(sessions, "Sue@Example.org", "supervisor", PASSWORD, name="Sue", language="sv")
    accounts.create_account(sessions, "ada@example.org", "agent", PASSWORD, agent_id=7)
    accounts.set_preferences(sessions, sue, "nl", "Europe/Amsterdam")
    told = announced(sessions)
    assert [(a["id"], a["email"], a["role"], a["language"], a["disabled"]) for a in told] == [
        (sue, "sue@example.org", "supervisor", "sv", False), (sue + 1, "ada@example.org", "agent", None, False),
        (sue, "sue@example.org", "supervisor", "nl", False)]
    assert told[0]["changed_at"] <= told[2]["changed_at"]
    assert "password_hash" not in told[0]


def test_a_refused_account_announces_nothing(sessions):
    accounts.create_account(sessions, "sue@example.org", "supervisor", PASSWORD)
    try:
        accounts.create_account(sessions, "sue@example.org", "admin", PASSWORD)
    except ValueError:
        pass
    assert [a["role"] for a in announced(sessions)] == ["supervisor"]


def test_the_migration_announces_the_accounts_made_before_it():
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{os.path.join(folder, 'gateway.db')}"
        upgrade(url, "0004")
        sessions = sessionmaker(engine_for(url))
        with sessions.begin() as session:
            session.execute(insert(Account.__table__), [
                {"email": "sue@example.org", "role": "supervisor", "password_hash": "x", "created_at": utcnow(),
                 "disabled_at": None},
                {"email": "old@example.org", "role": "admin", "password_hash": "x", "created_at": utcnow(),
                 "disabled_at": utcnow()}])
        upgrade(url)
        assert [(a["email"], a["role"], a["disabled"]) for a in announced(sessions)] == [
            ("sue@example.org", "supervisor", False), ("old@example.org", "admin", True)]
        engine_for(url).dispose()
