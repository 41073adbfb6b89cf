"""The workspace's one live stream per page (ui/live.py) through Flask's test client, the services stood in
for  and the broker too: the feed's subscription is not started, and the
test hands it envelopes as its consumer thread would (``WorkspaceFeed._announce``). The browser tests
(tests/ui/) run the same stream against the real platform and RabbitMQ."""
import re
import time
import uuid

import pytest

from helpdesk_common.errors import NotFound
from helpdesk_gateway import accounts
from helpdesk_gateway.app import create_app
from helpdesk_gateway.settings import Settings
from helpdesk_gateway.ui.live import WorkspaceFeed
from helpdesk_common.testing import database_fixtures
from helpdesk_gateway.cli import upgrade

# Pages and HTTP plumbing, not storage: SQLite here; the gateway's accounts and tokens meet PostgreSQL in
# test_auth.py, test_cli.py, test_ui_password.py and in the end-to-end postgres run (tests/README.md).
db_url, sessions = database_fixtures("gateway", upgrade, kinds=("sqlite",))

PASSWORD = "correct horse battery"


class Services:
    """What the stream asks: the ticket (to judge who may hear of it), the agents (at sign-in), and
    presence (who else the tickets service says is on the ticket)."""

    def __init__(self):
        self.calls, self.others = [], []

    def call(self, service, method, *args):
        self.calls.append((service, method, args))
        if method == "get_ticket":
            if args[0] not in ("HD-000001", "HD-000002"):
                raise NotFound(f"There is no ticket {args[0]}.", code="ticket_not_found")
            return {"number": args[0]}
        if method == "list_agents":
            return [{"id": 7, "name": "Ada", "email": "ada@example.org", "teams": [], "assignee": "agent-7"}]
        if method == "ticket_presence":
            return {"ticket_number": args[0], "others": self.others}
        raise AssertionError(f"unexpected call {service}.{method}")


class Delivered:
    def ack(self):
        pass


@pytest.fixture
def fake():
    return Services()


@pytest.fixture
def app(db_url, dead_amqp_uri, fake):
    app = create_app(Settings(database_url=db_url, bootstrap_token="t", amqp_uri=dead_amqp_uri, rpc_timeout=0.5))
    app.extensions["helpdesk.rpc"] = fake
    return app


@pytest.fixture
def feed(app):
    feed = WorkspaceFeed("amqp://nowhere")
    feed.start = lambda timeout=10: None  # no broker: the test announces the events itself
    app.extensions["helpdesk.workspace_feed"] = feed
    return feed


@pytest.fixture
def signed_in(app, sessions, monkeypatch):
    monkeypatch.setenv("HELPDESK_LIVE_KEEPALIVE", "0.1")
    monkeypatch.setenv("HELPDESK_PRESENCE_BEAT", "0.2")
    accounts.create_account(sessions, "ada@example.org", "agent", PASSWORD, name="Ada", agent_id=7)
    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    assert client.post("/sign-in", data={"email": "ada@example.org", "password": PASSWORD,
                                         "csrf_token": token}).status_code == 302
    return client


def announce(feed, event_type, data):
    feed._announce({"id": str(uuid.uuid4()), "type": event_type, "data": data}, Delivered())


def read_until(chunks, wanted, timeout=5):
    """The stream's text up to and including the first chunk containing ``wanted``."""
    heard, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = next(chunks)
        heard.append(chunk.decode() if isinstance(chunk, bytes) else chunk)
        if wanted in heard[-1]:
            return "".join(heard)
    raise AssertionError(f"{wanted!r} never came; heard {''.join(heard)!r}")


def presence_updates(fake):
    return [args[2] for _service, method, args in fake.calls if method == "ticket_presence"]


def test_the_ticket_pages_stream_is_its_presence_and_pushes_the_warning_and_my_notifications(signed_in, fake, feed):
    answer = signed_in.get("/workspace/live?ticket=HD-000001")
    assert answer.status_code == 200 and answer.mimetype == "text/event-stream"
    chunks = iter(answer.response)
    read_until(chunks, ": here")  # said "here" on the page's behalf, nobody else there: nothing to show
    assert presence_updates(fake)[0] == {}  # typing left as the page last said it

    fake.others = [{"actor": "agent-9", "name": "Bo <b>", "typing": True, "seen_at": "2026-12-07T10:00:00+00:00"}]
    announce(feed, "ticket_presence_changed", {"ticket_number": "HD-000001", "actor": "agent-9", "name": "Bo <b>",
                                               "present": True, "typing": True})
    pushed = read_until(chunks, "event: presence")
    assert "Bo &lt;b&gt; is typing a reply to this ticket." in pushed

    announce(feed, "agents_notified", {"ticket_number": "HD-000002", "kind": "mention", "recipients": ["agent-9"]})
    announce(feed, "agents_notified", {"ticket_number": "HD-000002", "kind": "mention", "recipients": ["agent-7"]})
    told = read_until(chunks, "event: notifications")
    assert told.count("event: notifications") == 1  # hers only, not Bo's

    announce(feed, "ticket_updated", {"ticket": {"number": "HD-000002"}, "changes": []})  # another ticket
    announce(feed, "ticket_updated", {"ticket": {"number": "HD-000001"}, "changes": []})
    changed = read_until(chunks, "event: ticket")
    assert '"number": "HD-000001"' in changed and "HD-000002" not in changed

    answer.close()  # the page closed: the stream says "gone", so colleagues' warnings drop at once
    assert presence_updates(fake)[-1] == {"here": False}


def test_other_pages_hear_their_notifications_only_and_the_console_its_chats(signed_in, fake, feed):
    answer = signed_in.get("/workspace/live?only=notifications")
    chunks = iter(answer.response)
    read_until(chunks, "retry:")
    announce(feed, "ticket_created", {"ticket": {"number": "HD-000001"}})
    announce(feed, "chat_started", {"chat": {"id": "c1"}, "entry": {"seq": 1}})
    announce(feed, "agents_notified", {"ticket_number": "HD-000001", "kind": "change", "recipients": ["agent-7"]})
    heard = read_until(chunks, "event: notifications")
    assert "event: ticket" not in heard and "event: chats" not in heard
    answer.close()
    assert presence_updates(fake) == []  # no ticket page: no presence

    console = signed_in.get("/workspace/live?chats=1")
    chunks = iter(console.response)
    read_until(chunks, "retry:")
    announce(feed, "chat_message_posted", {"chat": {"id": "c1"}, "entry": {"seq": 2}})  # no change to the lists
    announce(feed, "chat_answered", {"chat": {"id": "c1"}, "entry": {"seq": 3}})
    heard = read_until(chunks, "event: chats")
    assert heard.count("event: chats") == 1
    console.close()


def test_a_ticket_the_person_may_not_see_has_no_stream(signed_in, feed):
    answer = signed_in.get("/workspace/live?ticket=HD-000404")
    assert answer.status_code == 404 and answer.mimetype == "text/html"
