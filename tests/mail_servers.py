"""The real mail servers of the end-to-end tests: the intake tests' own Dovecot (IMAP) and aiosmtpd sink
(``services/intake/tests/servers.py``) and mail builders (``mails.py``), imported, not copied; and a
Dovecot for a whole test module."""
import os
import sys

import pytest

INTAKE_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "services", "intake",
                            "tests")
sys.path.insert(0, INTAKE_TESTS)

import mails  # noqa: E402,F401
from servers import Dovecot, SmtpSink, running_dovecot  # noqa: E402,F401


@pytest.fixture(scope="module")
def dovecot():
    with running_dovecot("e2e-dovecot-") as server:
        yield server
