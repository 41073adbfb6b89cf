"""Fixtures of intake alone (a real Dovecot, an SMTP sink, intake's migrated database), shared by intake's
own tests and by the tests in ``tests/intake/`` that run intake with the tickets service."""
import pytest
from sqlalchemy.orm import sessionmaker

from helpdesk_common.adapters.database import engine_for
from helpdesk_common.testing import database_params, migrated_test_database
from helpdesk_intake.migrate import upgrade as upgrade_intake
from servers import SmtpSink, running_dovecot


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


@pytest.fixture(params=database_params())
def intake_db_url(request, tmp_path):
    """Intake's database, migrated, of its own for each test: on SQLite and on PostgreSQL."""
    with migrated_test_database("intake", tmp_path, upgrade_intake, request.param) as url:
        yield url


@pytest.fixture
def intake_sessions(intake_db_url):
    return sessionmaker(engine_for(intake_db_url), expire_on_commit=False)
