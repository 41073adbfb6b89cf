"""Password reset and invitation links through Flask's test client (the mail RPC stood in for; the
browser test in tests/ui/test_admin_browser.py sends them through intake to a real SMTP sink)."""
import re
from datetime import timedelta

import pytest

from helpdesk_common.database import utcnow
from helpdesk_gateway import account_links, accounts
from helpdesk_gateway.app import create_app
from helpdesk_gateway.settings import Settings

PASSWORD = "correct horse battery"
LINK = re.compile(r"http://localhost(/password/set/\S+)")


class Mails:
    def __init__(self):
        self.sent = []

    def call(self, service, method, *args):
        if (service, method) == ("intake", "send_account_mail"):
            self.sent.append(args[0])
            return {"id": len(self.sent)}
        if method == "list_agents":
            return [{"id": 7, "name": "Ada", "email": "ada@example.org", "teams": [], "assignee": "agent-7"}]
        raise AssertionError(f"unexpected call {service}.{method}")

    def link(self, index=-1):
        return LINK.search(self.sent[index]["body"]).group(1)


@pytest.fixture
def mails():
    return Mails()


@pytest.fixture
def client(db_url, dead_amqp_uri, mails):
    app = create_app(Settings(database_url=db_url, bootstrap_token="t", amqp_uri=dead_amqp_uri, rpc_timeout=0.5))
    app.extensions["helpdesk.rpc"] = mails
    return app.test_client()


def csrf(client, path):
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get(path).get_data(as_text=True)).group(1)


def sign_in(client, email, password=PASSWORD):
    return client.post("/sign-in", data={"email": email, "password": password,
                                         "csrf_token": csrf(client, "/sign-in")})


def set_password(client, path, password, again=None):
    return client.post(path, data={"password": password, "password_again": again or password,
                                   "csrf_token": csrf(client, path)})


def test_a_reset_link_sets_the_password_once(client, sessions, mails):
    accounts.create_account(sessions, "ada@example.org", "admin", PASSWORD, name="Ada", language="nl")
    answer = client.post("/password/forgot", data={"email": "ADA@example.org ",
                                                   "csrf_token": csrf(client, "/password/forgot")})
    assert answer.status_code == 200 and "ADA@example.org" in answer.get_data(as_text=True)
    (mail,) = mails.sent
    assert mail["to"] == "ada@example.org" and mail["language"] == "nl" and "Ada" in mail["body"]
    path = mails.link()
    assert set_password(client, path, "short").status_code == 422
    assert set_password(client, path, "a new long password", "another long one").status_code == 422
    answer = set_password(client, path, "a new long password")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/sign-in")
    assert sign_in(client, "ada@example.org").status_code == 401  # the old password is gone
    assert sign_in(client, "ada@example.org", "a new long password").status_code == 302
    assert client.get(path).status_code == 410  # used: the hash it was signed over has changed
    assert set_password(client, path, "yet another password").status_code == 410


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, mails):
    answer = client.post("/password/forgot", data={"email": "nobody@example.org",
                                                   "csrf_token": csrf(client, "/password/forgot")})
    assert answer.status_code == 200 and "If there is an account" in answer.get_data(as_text=True)
    assert mails.sent == []


def test_links_expire_and_cannot_be_forged(sessions):
    now = utcnow()
    token = account_links.make("secret", "reset", 3, "hash-1", now)
    assert account_links.check("secret", token, "hash-1", now + timedelta(minutes=59))
    assert not account_links.check("secret", token, "hash-1", now + timedelta(minutes=61))
    assert not account_links.check("secret", token, "hash-2", now)  # the password changed since
    assert not account_links.check("other secret", token, "hash-1", now)
    invite = account_links.make("secret", "invite", 3, "hash-1", now)
    assert account_links.check("secret", invite, "hash-1", now + timedelta(days=6))
    tampered = "i3" + token[2:]  # a reset link passed off as a (longer-lived) invitation
    assert not account_links.check("secret", tampered, "hash-1", now)
    assert not account_links.check("secret", "garbage", "hash-1", now)


def test_an_admin_invites_and_the_invited_person_chooses_a_password(client, sessions, mails):
    accounts.create_account(sessions, "root@example.org", "admin", PASSWORD, name="Alex")
    sign_in(client, "root@example.org")
    answer = client.post("/workspace/admin/people", data={
        "email": "bo@example.org", "name": "Bo <b>Berg</b>", "role": "supervisor", "language": "sv",
        "csrf_token": csrf(client, "/workspace/admin/people")})
    assert answer.status_code == 302
    (mail,) = mails.sent
    assert mail["to"] == "bo@example.org" and mail["language"] == "sv" and "Alex" in mail["body"]
    people = client.get("/workspace/admin/people").get_data(as_text=True)
    assert "Bo &lt;b&gt;Berg&lt;/b&gt;" in people and "<b>Berg" not in people
    again = client.post("/workspace/admin/people", data={
        "email": "bo@example.org", "role": "agent", "csrf_token": csrf(client, "/workspace/admin/people")})
    assert again.status_code == 422 and len(mails.sent) == 1
    client.post("/sign-out", data={"csrf_token": csrf(client, "/workspace/admin/people")})
    assert set_password(client, mails.link(), "bo's own password").status_code == 302
    assert sign_in(client, "bo@example.org", "bo's own password").status_code == 302


def test_people_pages_are_for_admins_and_supervisors_read_only(client, sessions, mails):
    accounts.create_account(sessions, "sup@example.org", "supervisor", PASSWORD)
    sign_in(client, "sup@example.org")
    page = client.get("/workspace/admin/people")
    assert page.status_code == 200 and "Invite a person" not in page.get_data(as_text=True)
    refused = client.post("/workspace/admin/people", data={
        "email": "x@example.org", "role": "admin", "csrf_token": csrf(client, "/workspace/admin/people")})
    assert refused.status_code == 403 and accounts.find_account(sessions, email="x@example.org") is None
    accounts.create_account(sessions, "ada@example.org", "agent", PASSWORD, agent_id=7)
    client.post("/sign-out", data={"csrf_token": csrf(client, "/workspace/admin/people")})
    sign_in(client, "ada@example.org")
    assert client.get("/workspace/admin/people").status_code == 403


def test_the_rest_routes_invite_and_reset_as_the_pages_do(client, sessions, mails):
    admin = {"Authorization": "Bearer t"}
    answer = client.post("/api/v1/accounts/invitations", headers=admin,
                         json={"email": "bo@example.org", "role": "agent", "name": "Bo", "language": "sv"})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.get_json()["mail_queued"] is True and answer.get_json()["account"]["role"] == "agent"
    assert mails.sent[-1]["to"] == "bo@example.org" and mails.sent[-1]["language"] == "sv"
    assert set_password(client, mails.link(), "bo's own long password").status_code == 302
    again = client.post("/api/v1/accounts/invitations", headers=admin, json={"email": "BO@example.org", "role": "agent"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "account_exists"
    bad = client.post("/api/v1/accounts/invitations", headers=admin, json={"email": "nope", "role": "king"})
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "validation_failed"
    audit = client.get("/api/v1/audit", headers=admin).get_json()
    assert audit[0]["action"] == "POST /api/v1/accounts/invitations" and audit[0]["actor"] == "bootstrap"

    sent = len(mails.sent)  # a reset: anyone, the same answer for an unknown address, a mail for a known one
    known = client.post("/api/v1/password-resets", json={"email": "bo@example.org"})
    unknown = client.post("/api/v1/password-resets", json={"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 202 and known.get_json() == unknown.get_json()
    assert len(mails.sent) == sent + 1 and mails.sent[-1]["to"] == "bo@example.org"
    assert set_password(client, mails.link(), "bo's newer long password").status_code == 302


def test_an_agent_token_may_not_invite(client, sessions):
    from helpdesk_gateway.auth import create_token

    _, secret = create_token(sessions, "desk", "agent", "al@example.org", [], None, None)
    answer = client.post("/api/v1/accounts/invitations", headers={"Authorization": f"Bearer {secret}"},
                         json={"email": "eve@example.org", "role": "admin"})
    assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "role_not_allowed"


def test_resets_are_limited_per_address_on_the_page_and_the_route_alike(db_url, dead_amqp_uri, mails):
    app = create_app(Settings(database_url=db_url, bootstrap_token="t", amqp_uri=dead_amqp_uri, rpc_timeout=0.5,
                              rate_limit_costly="2/minute"))
    app.extensions["helpdesk.rpc"] = mails
    client = app.test_client()
    token = csrf(client, "/password/forgot")
    answers = [client.post("/api/v1/password-resets", json={"email": "x@example.org"}).status_code for _ in range(3)]
    assert answers == [202, 202, 429]
    page = [client.post("/password/forgot", data={"email": "x@example.org", "csrf_token": token}) for _ in range(3)]
    assert [p.status_code for p in page] == [200, 200, 429] and page[-1].mimetype == "text/html"
