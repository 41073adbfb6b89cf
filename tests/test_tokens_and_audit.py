"""Token scopes, expiry, revocation across gateway workers, the bootstrap token's rotation, chat stream
tickets, and the audit log, against the whole platform (gunicorn with two workers, every service,
RabbitMQ). Each request goes on a new connection, so both workers serve them.
"""
import subprocess
import uuid
from datetime import datetime

import pytest
import requests
from sqlalchemy import DateTime, bindparam, text

from helpdesk_common.adapters.database import engine_for
from stack import BIN, ROOT, EventRecorder, Stack, create_token, new_ticket, stack_fixture, wait_for

pytestmark = pytest.mark.e2e


stack = stack_fixture("tokens", gateway_workers=2)


def call(stack, method, path, token, **kwargs):
    return requests.request(method, f"{stack.url}/api/v1{path}", headers={"Authorization": f"Bearer {token}"},
                            timeout=10, **kwargs)


def error_code(answer):
    return answer.status_code, answer.json()["error"]["code"]


def helpdesk(stack, *argv):
    result = subprocess.run([f"{BIN}/helpdesk", *argv], cwd=ROOT, env=stack.env(), check=True, capture_output=True,
                            text=True)
    return result.stdout.strip()


def test_a_read_only_token_reads_but_changes_nothing(stack):
    token = helpdesk(stack, "token", "create", "--name", "dashboard", "--role", "agent", "--scope", "read")
    assert call(stack, "GET", "/tickets", token).status_code == 200
    assert error_code(call(stack, "POST", "/tickets", token, json=new_ticket())) == (403, "scope_not_allowed")


def test_an_admin_token_without_the_admin_scope_cannot_administer(stack):
    made = call(stack, "POST", "/tokens", stack.token, json={"name": "ops", "role": "admin", "scopes": ["read", "write"]})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert call(stack, "POST", "/tickets", token, json=new_ticket()).status_code == 201
    assert error_code(call(stack, "POST", "/teams", token, json={"name": "ops"})) == (403, "scope_not_allowed")
    assert error_code(call(stack, "POST", "/tokens", stack.token, json={
        "name": "x", "role": "agent", "scopes": ["admin"]})) == (422, "validation_failed")  # beyond the role


def test_a_token_expires(stack):
    made = call(stack, "POST", "/tokens", stack.token, json={"name": "short", "role": "agent", "expires_in_days": 1})
    assert made.status_code == 201 and made.json()["expires_at"]
    token, token_id = made.json()["token"], made.json()["id"]
    assert call(stack, "GET", "/workflow", token).status_code == 200
    # a day later (moved in the database: tests do not wait a day); and a never-expiring one stays valid
    engine = engine_for(stack.gateway_db_url)
    try:
        with engine.begin() as database:
            # bound as a DateTime: stored as the gateway's own column type stores it, on either database
            database.execute(text("UPDATE api_tokens SET expires_at = :past WHERE id = :id").bindparams(
                bindparam("past", type_=DateTime())), {"past": datetime(2020, 1, 1), "id": token_id})
            # the row exists only after a first revocation: made here if this stack has revoked nothing yet (a
            # worker that cached the token before would otherwise keep serving its old expiry)
            database.execute(text("INSERT INTO gateway_counters (name, value) VALUES ('token_version', 1) "
                                  "ON CONFLICT (name) DO UPDATE SET value = gateway_counters.value + 1"))
    finally:
        engine.dispose()
    assert error_code(call(stack, "GET", "/workflow", token)) == (401, "token_expired")
    forever = call(stack, "POST", "/tokens", stack.token, json={"name": "f", "role": "agent", "expires_in_days": None})
    assert forever.json()["expires_at"] is None


def test_a_revoked_token_is_refused_at_once_by_every_worker(stack):
    token = create_token(stack, "agent")
    token_id = next(t["id"] for t in call(stack, "GET", "/tokens", stack.token).json() if t["name"] == "test-agent"
                    and t["revoked_at"] is None)
    assert {call(stack, "GET", "/workflow", token).status_code for _ in range(20)} == {200}  # cached by both workers
    revoked = call(stack, "DELETE", f"/tokens/{token_id}", stack.token)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert {error_code(call(stack, "GET", "/workflow", token)) for _ in range(20)} == {(401, "invalid_token")}
    # and with the operator's command, from another process
    other = create_token(stack, "agent")
    other_id = max(t["id"] for t in call(stack, "GET", "/tokens", stack.token).json())
    assert {call(stack, "GET", "/workflow", other).status_code for _ in range(20)} == {200}
    helpdesk(stack, "token", "revoke", str(other_id))
    assert {call(stack, "GET", "/workflow", other).status_code for _ in range(20)} == {401}


def test_the_bootstrap_token_rotates(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("stack-bootstrap"), gateway_workers=2, services=())
    try:
        stack.start()
        assert call(stack, "GET", "/tokens", stack.token).status_code == 200
        first = helpdesk(stack, "token", "rotate-bootstrap")
        assert {call(stack, "GET", "/tokens", stack.token).status_code for _ in range(10)} == {401}
        assert {call(stack, "GET", "/tokens", first).status_code for _ in range(10)} == {200}
        second = helpdesk(stack, "token", "rotate-bootstrap")
        assert {call(stack, "GET", "/tokens", first).status_code for _ in range(10)} == {401}
        bootstrap = [t for t in call(stack, "GET", "/tokens", second).json() if t["bootstrap"]]
        assert [(t["role"], t["scopes"], t["expires_at"], bool(t["revoked_at"])) for t in bootstrap] == [
            ("admin", ["read", "write", "admin"], None, True), ("admin", ["read", "write", "admin"], None, False)]
    finally:
        stack.stop()


def test_chat_streams_open_with_a_short_lived_ticket_never_a_token_in_the_url(stack):
    def start():
        answer = requests.post(f"{stack.url}/api/v1/chats", timeout=10, json={
            "message": "Hello?", "name": "Eva", "email": f"eva-{uuid.uuid4().hex[:6]}@example.se"})
        return f"{stack.url}/api/v1/chats/{answer.json()['chat']['id']}", answer.json()["token"]

    (chat, token), (other_chat, _) = start(), start()
    ticket = requests.post(f"{chat}/stream-ticket", headers={"X-Chat-Token": token}, timeout=10)
    assert ticket.status_code == 201 and ticket.json()["expires_in"] == 60
    with requests.get(f"{chat}/stream", params={"ticket": ticket.json()["ticket"]}, stream=True, timeout=10) as stream:
        assert stream.status_code == 200
        assert b"Hello?" in next(line for line in stream.iter_lines() if b"Hello?" in line)
    elsewhere = requests.get(f"{other_chat}/stream", params={"ticket": ticket.json()["ticket"]}, timeout=10)
    assert error_code(elsewhere) == (404, "chat_not_found")  # a ticket names one chat
    forged = requests.get(f"{chat}/stream", params={"ticket": ticket.json()["ticket"][:-2] + "xx"}, timeout=10)
    assert error_code(forged) == (404, "chat_not_found")
    in_url = requests.get(f"{chat}/stream", params={"token": token}, timeout=10)
    assert error_code(in_url) == (422, "validation_failed")  # the chat token is refused in a URL
    assert error_code(requests.get(f"{chat}/entries", params={"token": token}, timeout=10)) == (422, "validation_failed")


def test_every_administrative_change_is_in_the_audit_log_and_announced(stack):
    with EventRecorder(stack.amqp_uri, source="gateway") as gateway:
        team = f"audit-{uuid.uuid4().hex[:6]}"
        assert call(stack, "POST", "/teams", stack.token, json={"name": team, "description": "Printers"}).status_code == 201
        made = call(stack, "POST", "/tokens", stack.token, json={"name": "crm", "role": "agent"}).json()
        helpdesk(stack, "token", "revoke", str(made["id"]))
        # an agent's everyday work is not administration
        number = call(stack, "POST", "/tickets", stack.token, json=new_ticket()).json()["number"]
        assert call(stack, "PATCH", f"/tickets/{number}", stack.token, json={"priority": "high"}).status_code == 200

        log = call(stack, "GET", "/audit", stack.token, params={"limit": 10}).json()
        newest = [(entry["actor"], entry["action"], entry["target"]) for entry in log[:3]]
        assert newest == [("cli", "token.revoked", f"token:{made['id']}"),
                          ("bootstrap", "POST /api/v1/tokens", "/api/v1/tokens"),
                          ("bootstrap", "POST /api/v1/teams", "/api/v1/teams")]
        assert log[2]["details"]["body"] == {"name": team, "description": "Printers"} and log[2]["at"]
        assert made["token"] not in str(log)  # the secret is never in the log
        assert all(f"/tickets/{number}" != entry["target"] for entry in log)
        announced = gateway.wait("audit_recorded", count=3)
        assert {e["data"]["entry"]["id"] for e in announced} >= {entry["id"] for entry in log[:3]}
        assert {e["source"] for e in announced} == {"gateway"}
    older = call(stack, "GET", "/audit", stack.token, params={"before": log[0]["id"], "actor": "cli"}).json()
    assert all(entry["id"] < log[0]["id"] and entry["actor"] == "cli" for entry in older)
    agent = create_token(stack, "agent")
    assert error_code(call(stack, "GET", "/audit", agent)) == (403, "role_not_allowed")
