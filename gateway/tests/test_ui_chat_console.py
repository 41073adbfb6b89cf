"""The chat console through Flask's test client, intake stood in for: each action makes the RPC its
/api/v1/chats route makes, with the person's viewer; a chat the person may not see is intake's 404; a
chat taken by another agent says so; what a customer types is shown as text."""
import re

import pytest

from helpdesk_common.errors import Conflict, NotFound
from helpdesk_gateway import accounts
from helpdesk_gateway.app import create_app
from helpdesk_gateway.settings import Settings
from helpdesk_common.testing import database_fixtures
from helpdesk_gateway.cli import upgrade

# Pages and HTTP plumbing, not storage: SQLite here; the gateway's accounts and tokens meet PostgreSQL in
# test_auth.py, test_cli.py, test_ui_password.py and in the end-to-end postgres run (tests/README.md).
db_url, sessions = database_fixtures("gateway", upgrade, kinds=("sqlite",))

PASSWORD = "correct horse battery"


def chat(state="waiting", agent=None, ticket=None):
    return {"id": "c1", "state": state, "customer": {"name": "Eva <b>", "email": "eva@example.se"}, "agent": agent,
            "subject": "Chat: router", "ticket_number": ticket, "outcome": None, "last_seq": 2,
            "started_at": "2026-12-07T10:00:00+00:00", "answered_at": None, "ended_at": None}


class Intake:
    def __init__(self):
        self.calls, self.chat = [], chat()
        self.entries = [{"seq": 1, "kind": "message", "author": "eva@example.se", "author_role": "customer",
                         "body": "<script>alert(1)</script> blinks red", "at": "2026-12-07T10:00:00+00:00"}]

    def call(self, service, method, *args):
        self.calls.append((method, args))
        if method == "list_agents":
            return [{"id": 7, "name": "Ada", "email": "ada@example.org", "teams": ["network"], "assignee": "agent-7"}]
        if method == "list_chats":
            return [self.chat] if args[0]["state"] == self.chat["state"] else []
        if args and args[0] == "elsewhere":
            raise NotFound("There is no chat elsewhere.", code="chat_not_found")
        if method == "join_chat":
            if self.chat["state"] != "waiting":
                raise Conflict("Another agent took this chat a moment ago.", code="chat_taken")
            self.chat.update(state="active", agent=args[1]["actor"], ticket_number="HD-000009")
            return self.chat
        if method == "chat_entries":
            return {"chat": self.chat, "entries": [e for e in self.entries if e["seq"] > args[1]["after"]]}
        if method == "post_chat_message":
            self.entries.append({"seq": len(self.entries) + 1, "kind": "message", "author": args[2]["actor"],
                                 "author_role": args[2]["role"], "body": args[1]["body"],
                                 "at": "2026-12-07T10:01:00+00:00"})
            return self.entries[-1]
        if method == "leave_chat":
            self.chat["state"] = "ended"
            return self.chat
        raise AssertionError(f"unexpected call {service}.{method}")


@pytest.fixture
def intake():
    return Intake()


@pytest.fixture
def client(db_url, dead_amqp_uri, intake, sessions):
    app = create_app(Settings(database_url=db_url, bootstrap_token="t", amqp_uri=dead_amqp_uri, rpc_timeout=0.5))
    app.extensions["helpdesk.rpc"] = intake
    accounts.create_account(sessions, "ada@example.org", "agent", PASSWORD, agent_id=7)
    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    client.post("/sign-in", data={"email": "ada@example.org", "password": PASSWORD, "csrf_token": token})
    return client


def csrf(client, path="/workspace/chats/"):
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get(path).get_data(as_text=True)).group(1)


def test_join_talk_and_end_as_the_chat_routes_do_with_the_persons_viewer(client, intake):
    page = client.get("/workspace/chats/").get_data(as_text=True)
    assert "Eva &lt;b&gt;" in page and 'action="/workspace/chats/c1/join"' in page
    assert client.post("/workspace/chats/c1/join", data={"csrf_token": csrf(client)}).headers["Location"] == \
        "/workspace/chats/c1"
    ((chat_id, viewer),) = [args for method, args in intake.calls if method == "join_chat"]
    assert chat_id == "c1" and viewer["actor"] == "agent-7" and viewer["role"] == "agent" and viewer["teams"] == ["network"]
    page = client.get("/workspace/chats/c1").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; blinks red" in page and "<script>alert" not in page
    assert 'href="/workspace/tickets/HD-000009"' in page
    panel = client.post("/workspace/chats/c1/messages", headers={"HX-Request": "true"},
                        data={"body": "Unplug it", "csrf_token": csrf(client, "/workspace/chats/c1")})
    assert panel.status_code == 200 and 'id="chat-panel"' in panel.get_data(as_text=True)
    assert "Unplug it" in panel.get_data(as_text=True) and "<html" not in panel.get_data(as_text=True)
    assert [args[1] for method, args in intake.calls if method == "post_chat_message"] == [{"body": "Unplug it"}]
    client.post("/workspace/chats/c1/messages", data={"body": "  ", "csrf_token": csrf(client, "/workspace/chats/c1")})
    assert len([1 for method, _ in intake.calls if method == "post_chat_message"]) == 1  # an empty one is not sent
    assert client.post("/workspace/chats/c1/leave", data={"csrf_token": csrf(client, "/workspace/chats/c1")}).status_code == 302
    assert intake.chat["state"] == "ended"
    # the page's one live stream names its chat and what the page showed (ui/live.py)
    assert 'sse-connect="/workspace/live?chat=c1&amp;after=2"' in client.get("/workspace/chats/c1").get_data(as_text=True)


def test_a_chat_taken_by_another_agent_says_so(client, intake):
    intake.chat.update(state="active", agent="agent-9")
    answer = client.post("/workspace/chats/c1/join", data={"csrf_token": csrf(client)}, follow_redirects=True)
    assert "Another agent took this chat." in answer.get_data(as_text=True)


def test_a_chat_the_person_may_not_see_is_a_404_page_and_no_stream(client):
    assert client.get("/workspace/chats/elsewhere").status_code == 404
    answer = client.get("/workspace/live?chat=elsewhere")
    assert answer.status_code == 404 and answer.mimetype == "text/html"


def test_posting_without_the_csrf_token_is_refused(client, intake):
    assert client.post("/workspace/chats/c1/messages", data={"body": "forged"}).status_code == 403
    assert [m for m, _ in intake.calls if m == "post_chat_message"] == []
