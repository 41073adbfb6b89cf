"""Fixtures of intake's own tests: real Dovecot and SMTP servers, intake's migrated database. Tests that run
intake with the tickets service (or through the gateway) are in ``tests/intake/``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from intake_fixtures import dovecot, intake_db_url, intake_sessions, mailbox, smtp_sink  # noqa: E402,F401
