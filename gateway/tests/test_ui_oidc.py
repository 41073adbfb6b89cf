"""Single sign-on against a real OpenID provider on loopback (oidc-provider-mock in a child process): the
authorization-code flow through the gateway, accounts linked by email, unknown emails refused, a
forged callback refused."""
import os
import sys
from urllib.parse import urlsplit

import pytest
import requests

from helpdesk_gateway import accounts
from helpdesk_gateway.app import create_app
from helpdesk_gateway.settings import Settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oidc_provider import OidcProvider  # noqa: E402
from helpdesk_common.testing import database_fixtures
from helpdesk_gateway.cli import upgrade

# Pages and HTTP plumbing, not storage: SQLite here; the gateway's accounts and tokens meet PostgreSQL in
# test_auth.py, test_cli.py, test_ui_password.py and in the end-to-end postgres run (tests/README.md).
db_url, sessions = database_fixtures("gateway", upgrade, kinds=("sqlite",))

PASSWORD = "correct horse battery"

pytestmark = pytest.mark.interface  # a real OpenID provider runs for these tests


@pytest.fixture(scope="module")
def provider():
    provider = OidcProvider().start()
    yield provider
    provider.stop()


class NoServices:
    def call(self, service, method, *args):
        if method == "list_agents":
            return [{"id": 7, "name": "Ada", "email": "ada@example.org", "teams": [], "assignee": "agent-7"}]
        if method in ("list_tickets",):
            return {"items": [], "next_cursor": None}
        raise AssertionError(f"unexpected call {service}.{method}")


@pytest.fixture
def client(db_url, dead_amqp_uri, provider, monkeypatch, sessions):
    for name, value in provider.env().items():
        monkeypatch.setenv(name, value)
    app = create_app(Settings(database_url=db_url, bootstrap_token="t", amqp_uri=dead_amqp_uri, rpc_timeout=0.5))
    app.extensions["helpdesk.rpc"] = NoServices()
    accounts.create_account(sessions, "ada@example.org", "admin", PASSWORD, name="Ada")
    return app.test_client()


def through_the_provider(client, sub):
    """Start at the gateway, authorize ``sub`` at the provider, and come back: the callback's answer."""
    start = client.get("/sign-in/oidc")
    assert start.status_code == 302 and start.headers["Location"].startswith("http://127.0.0.1:")
    authorized = requests.post(start.headers["Location"], data={"sub": sub}, allow_redirects=False, timeout=5)
    assert authorized.status_code in (302, 303), authorized.text
    back = urlsplit(authorized.headers["Location"])
    assert back.path == "/sign-in/oidc/callback"
    return client.get(f"{back.path}?{back.query}")


def test_the_sign_in_page_offers_single_sign_on(client):
    page = client.get("/sign-in").get_data(as_text=True)
    assert "Sign in with Example SSO" in page and 'href="/sign-in/oidc"' in page


def test_a_known_email_signs_in_to_its_account_case_and_spacing_aside(client, provider):
    provider.user("ada-at-idp", email=" Ada@Example.org", name="Ada L", email_verified=True)
    answer = through_the_provider(client, "ada-at-idp")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/workspace/tickets")
    cookie = next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith("hd_session="))
    assert "HttpOnly" in cookie
    assert client.get("/workspace/preferences").status_code == 200  # signed in


def test_an_unknown_email_is_refused_and_no_account_is_made(client, provider, sessions):
    provider.user("eve", email="eve@example.org", email_verified=True)
    answer = through_the_provider(client, "eve")
    assert answer.status_code == 403 and "Ask an administrator to invite you" in answer.get_data(as_text=True)
    assert accounts.find_account(sessions, email="eve@example.org") is None
    assert client.get("/workspace/preferences").status_code == 302  # not signed in


def test_an_unverified_email_or_none_is_refused(client, provider):
    provider.user("ada-unverified", email="ada@example.org", email_verified=False)
    assert through_the_provider(client, "ada-unverified").status_code == 403
    provider.user("nobody")
    assert through_the_provider(client, "nobody").status_code == 403


def test_a_callback_without_the_state_this_browser_started_is_refused(client, provider):
    provider.user("ada-at-idp", email="ada@example.org", email_verified=True)
    start = client.get("/sign-in/oidc")
    authorized = requests.post(start.headers["Location"], data={"sub": "ada-at-idp"}, allow_redirects=False, timeout=5)
    back = urlsplit(authorized.headers["Location"])
    victim = client.application.test_client()  # another browser: it never started this sign-in
    answer = victim.get(f"{back.path}?{back.query}")
    assert answer.status_code == 401 and "start again" in answer.get_data(as_text=True)
    assert victim.get("/workspace/preferences").status_code == 302
