"""Fixtures of the intake tests: real Dovecot and SMTP servers, migrated databases, real services."""
import os
import sys

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy.orm import sessionmaker

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mails  # noqa: E402
from servers import SmtpSink, running_dovecot, wait_for  # noqa: E402

from helpdesk_common.adapters.database import engine_for  # noqa: E402
from helpdesk_common.testing import migrated_test_database  # noqa: E402
from helpdesk_intake.migrate import upgrade as upgrade_intake  # noqa: E402
from helpdesk_tickets.migrate import upgrade as upgrade_tickets  # noqa: E402


@pytest.fixture(scope="session")
def dovecot():
    with running_dovecot("intake-dovecot-") as server:
        yield server


@pytest.fixture(scope="session")
def smtp_sink(tmp_path_factory):
    sink = SmtpSink(tmp_path_factory.mktemp("smtp")).start()
    yield sink
    sink.stop()


@pytest.fixture
def mailbox(dovecot):
    return dovecot.mailbox()


@pytest.fixture
def intake_db_url(tmp_path):
    """Intake's database: SQLite, or a throwaway PostgreSQL database with HELPDESK_TEST_INTAKE_DB=postgresql
    (the same tests on the production database)."""
    with migrated_test_database("intake", tmp_path, upgrade_intake) as url:
        yield url


@pytest.fixture
def intake_sessions(intake_db_url):
    return sessionmaker(engine_for(intake_db_url), expire_on_commit=False)


@pytest.fixture
def tickets_db_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'tickets.db'}"
    upgrade_tickets(url)
    yield url
    engine_for(url).dispose()


@pytest.fixture
def tickets_config(rabbit_config, tickets_db_url):
    return {**rabbit_config, "TICKETS_DB_URL": tickets_db_url, "serializer": "json", "OUTBOX_POLL_INTERVAL": 0.2}


@pytest.fixture
def tickets_service(container_factory, tickets_config):
    from helpdesk_tickets.service import TicketsService

    container = container_factory(TicketsService, tickets_config)
    container.start()
    return container


@pytest.fixture
def intake_config(rabbit_config, intake_db_url, tmp_path, mailbox, smtp_sink):
    return {**rabbit_config, "INTAKE_DB_URL": intake_db_url, "serializer": "json",
            "IMAP_URLS": mailbox.url(team="support"), "IMAP_POLL_INTERVAL": 0.1,
            "SMTP_URL": smtp_sink.url, "SUPPORT_ADDRESS": "support@helpdesk.test", "SUPPORT_NAME": "Helpdesk",
            "ATTACHMENTS_DIR": str(tmp_path / "attachments"), "MAIL_POLL_INTERVAL": 0.1,
            "MAIL_BACKOFF": "0.2,0.5", "OUTBOX_POLL_INTERVAL": 0.2, "CLAIM_LEASE_SECONDS": 1,
            "PLACEHOLDER_EMAIL_DOMAIN": "contacts.example.com", "MAIL_AUTHSERV_ID": mails.AUTHSERV_ID}


@pytest.fixture
def intake_service(container_factory, intake_config, tickets_service):
    from helpdesk_intake.service import IntakeService

    container = container_factory(IntakeService, intake_config)
    container.start()
    return container


@pytest.fixture
def tickets_rpc(tickets_config, tickets_service):
    with ServiceRpcProxy("tickets", tickets_config, timeout=15) as proxy:
        yield proxy


@pytest.fixture
def intake_rpc(intake_config, intake_service):
    with ServiceRpcProxy("intake", intake_config, timeout=15) as proxy:
        yield proxy


ADMIN = {"actor": "test-admin", "role": "admin"}
AGENT = {"actor": "agent-7", "role": "agent"}


@pytest.fixture
def find_tickets(tickets_rpc):
    """Tickets of one requester, oldest first."""

    def find(email):
        page = tickets_rpc.list_tickets({"requester": email, "limit": 100}, ADMIN)
        return list(reversed(page["items"]))

    return find


@pytest.fixture
def wait_tickets(find_tickets):
    def wait(email, count=1, timeout=15):
        return wait_for(lambda: len(find_tickets(email)) >= count and find_tickets(email), timeout=timeout,
                        what=f"{count} ticket(s) of {email}")

    return wait
