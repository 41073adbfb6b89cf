"""The browser tests' shared set-up: this folder on the import path (``browser.py``, ``ui_kit.py``) beside
tests/ (``stack.py``), and the fixtures every module used to define for itself.

- ``browser``: one headless Chromium process for the module (``browser.py``), closed after it;
- ``smtp_sink``: a real SMTP server on loopback for the module, where intake's outgoing mail lands;
- ``ui_platform``: ``ui_platform("stack-admin", env)`` starts the whole platform for the module (a
  ``Stack`` on SQLite, ``HELPDESK_LIVE_KEEPALIVE`` 2 s unless ``env`` says otherwise) and stops it after.

Each module keeps its own ``platform`` fixture (its settings) and ``world`` (its people and data), built
from these and from ``ui_kit``'s helpers (accounts, signing in, axe, screenshots).
"""
import os
import sys

import pytest

sys.path.append(os.path.dirname(os.path.abspath(__file__)))

from browser import Browser  # noqa: E402
from mail_servers import SmtpSink  # noqa: E402
from stack import Stack  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    browser = Browser()
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def smtp_sink(tmp_path_factory):
    sink = SmtpSink(tmp_path_factory.mktemp("ui-smtp")).start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def ui_platform(tmp_path_factory):
    """``start(name, env=None, **stack_options)``: the module's platform, started once, stopped after the
    module (a start that fails stops what it started)."""
    started = []

    def start(name, env=None, **options):
        stack = Stack(tmp_path_factory.mktemp(name), env={"HELPDESK_LIVE_KEEPALIVE": "2", **(env or {})},
                      **options)
        started.append(stack)
        stack.start()
        return stack

    yield start
    for stack in started:
        stack.stop()
