"""Migrate a gateway database the way ``helpdesk migrate`` does."""
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def migrate(url):
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "helpdesk"), "migrate"], cwd=ROOT, check=True,
                   capture_output=True, env=dict(os.environ, HELPDESK_GATEWAY_DB_URL=url))
