"""Intake with the tickets service (and, for the web form, through the gateway): interface tests of the
channels end to end, on real Dovecot and SMTP servers and a real RabbitMQ. Intake's own fixtures (servers,
its database) come from ``services/intake/tests/intake_fixtures.py``; these add the tickets service."""
import os
import sys

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

HERE = os.path.dirname(os.path.abspath(__file__))
INTAKE_TESTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "services", "intake", "tests")
sys.path[:0] = [HERE, INTAKE_TESTS]

import mails  # noqa: E402
from intake_fixtures import dovecot, intake_db_url, intake_sessions, mailbox, smtp_sink  # noqa: E402,F401
from servers import wait_for  # noqa: E402
from viewers import ADMIN  # noqa: E402

from helpdesk_common.testing import migrated_test_database  # noqa: E402
from helpdesk_tickets.migrate import upgrade as upgrade_tickets  # noqa: E402


@pytest.fixture
def tickets_db_url(tmp_path):
    """The tickets database, a copy of one migrated once for the run (SQLite: intake's is on both)."""
    with migrated_test_database("tickets", tmp_path, upgrade_tickets) as url:
        yield url


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
            "MAIL_BACKOFF": "0.2,0.5", "OUTBOX_POLL_INTERVAL": 0.2, "CLAIM_LEASE_SECONDS": 10,
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
