"""The real mail servers of the end-to-end tests: the intake tests' own Dovecot (IMAP) and aiosmtpd sink
(``services/intake/tests/servers.py``) and mail builders (``mails.py``), imported, not copied; and a
Dovecot for a whole test module."""
import os
import shutil
import sys
import tempfile

import pytest

INTAKE_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "services", "intake",
                            "tests")
sys.path.insert(0, INTAKE_TESTS)

import mails  # noqa: E402,F401
from servers import Dovecot, SmtpSink  # noqa: E402,F401


@pytest.fixture(scope="module")
def dovecot():
    # Not under pytest's temporary folder: as root, that is a private folder Dovecot's user cannot enter.
    root = tempfile.mkdtemp(prefix="e2e-dovecot-")
    server = Dovecot(root).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)
