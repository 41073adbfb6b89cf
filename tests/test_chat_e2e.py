"""Live chat end to end: real HTTP through gunicorn (two worker processes, so a message posted through
one worker must reach a stream held by the other: the fan-out goes through RabbitMQ), real intake,
tickets and routing processes, server-sent event streams read as a browser's EventSource would.
"""
import json
import queue
import threading
import uuid

import pytest
import requests

from stack import EventRecorder, create_token, stack_fixture, wait_for

pytestmark = pytest.mark.e2e

ANSWER_TIMEOUT = 20  # long enough for the answered chat to be joined on a loaded machine


stack = stack_fixture("chat", gateway_workers=2, env={
    "HELPDESK_CHAT_ANSWER_TIMEOUT": str(ANSWER_TIMEOUT), "HELPDESK_CHAT_SWEEP_INTERVAL": "0.5",
    "HELPDESK_CHAT_KEEPALIVE": "1"})


def stream_ticket(chats, token):
    """What a browser does before opening the stream: trade the chat token (a header) for a ticket (the URL)."""
    answer = requests.post(f"{chats}/stream-ticket", headers={"X-Chat-Token": token}, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["ticket"]


class EventStream:
    """Reads a text/event-stream response in a thread, as EventSource does; keeps the events in order."""

    def __init__(self, url, headers=None, params=None):
        self.response = requests.get(url, headers=headers or {}, params=params or {}, stream=True, timeout=(5, 60))
        self.events = queue.Queue()
        self.closed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.response.status_code == 200:
            self._thread.start()

    def _read(self):
        event = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if self._stop.is_set():  # the server's keep-alives (every second here) let us notice
                    break
                if line == "":
                    if "data" in event:
                        self.events.put(self._frame(event))
                    event = {}
                elif not line.startswith(":"):
                    field, _, value = line.partition(":")
                    event[field] = value[1:] if value.startswith(" ") else value
        except (requests.RequestException, AttributeError) as error:
            if not self._stop.is_set():  # a drop that close() did not ask for is the test's business
                self.events.put(AssertionError(f"the stream broke: {error!r}"))
        finally:
            self.response.close()  # in the reading thread: closing from another one is not safe
            self.closed.set()

    @staticmethod
    def _frame(event):
        try:
            return {"id": int(event["id"]), "event": event["event"], "data": json.loads(event["data"])}
        except (KeyError, ValueError) as error:
            return AssertionError(f"a malformed frame {event!r}: {error!r}")

    def next(self, timeout=20):
        try:
            item = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout} s") from None
        if isinstance(item, AssertionError):
            raise item
        return item

    def close(self):
        """Drop the connection, as a browser tab that closes."""
        self._stop.set()
        if self._thread.is_alive():
            assert self.closed.wait(15), "the stream did not close"
        else:
            self.response.close()


def test_customer_and_agent_chat_live_and_the_transcript_is_on_the_ticket(stack):
    url, tag = stack.url, uuid.uuid4().hex[:8]
    customer_email = f"eva-{tag}@example.se"
    started = requests.post(f"{url}/api/v1/chats", timeout=10, json={
        "name": "Eva Ångström", "email": customer_email, "message": "My VPN drops every five minutes."})
    assert started.status_code == 201, started.text
    chat, token = started.json()["chat"], started.json()["token"]
    assert chat["state"] == "waiting" and chat["ticket_number"] is None
    chats = f"{url}/api/v1/chats/{chat['id']}"

    agent_token = create_token(stack, "agent")
    agent = stack.session(agent_token)
    waiting = agent.get(f"{url}/api/v1/chats", timeout=10).json()
    assert chat["id"] in [c["id"] for c in waiting]

    customer_stream = EventStream(f"{chats}/stream", params={"ticket": stream_ticket(chats, token)})
    agent_stream = EventStream(f"{chats}/stream", headers={"Authorization": f"Bearer {agent_token}"})
    try:
        for stream in (customer_stream, agent_stream):
            first = stream.next()
            assert (first["id"], first["event"], first["data"]["body"]) == (1, "message",
                                                                              "My VPN drops every five minutes.")

        joined = agent.post(f"{chats}/join", timeout=10)
        assert joined.status_code == 200, joined.text
        number = joined.json()["ticket_number"]
        assert number and joined.json()["state"] == "active"
        for stream in (customer_stream, agent_stream):
            assert stream.next()["event"] == "joined"

        said = agent.post(f"{chats}/messages", timeout=10, json={"body": "Hello Eva, which VPN client?"})
        assert said.status_code == 201, said.text
        heard = customer_stream.next()
        assert (heard["id"], heard["data"]["body"], heard["data"]["author_role"]) == (
            3, "Hello Eva, which VPN client?", "agent")
        assert agent_stream.next()["id"] == 3

        answer = requests.post(f"{chats}/messages", timeout=10, headers={"X-Chat-Token": token},
                               json={"body": "WireGuard 1.0.2"})
        assert answer.status_code == 201, answer.text
        heard = agent_stream.next()
        assert (heard["id"], heard["data"]["body"], heard["data"]["author"]) == (4, "WireGuard 1.0.2", customer_email)
        assert customer_stream.next()["id"] == 4

        # the customer's connection drops; what is said meanwhile arrives when it reconnects
        customer_stream.close()
        agent.post(f"{chats}/messages", timeout=10, json={"body": "Please update to 1.0.3."})
        customer_stream = EventStream(f"{chats}/stream", params={"ticket": stream_ticket(chats, token)},
                                      headers={"Last-Event-ID": "4"})
        missed = customer_stream.next()
        assert (missed["id"], missed["data"]["body"]) == (5, "Please update to 1.0.3.")
        assert agent_stream.next()["id"] == 5

        left = requests.post(f"{chats}/leave", timeout=10, headers={"X-Chat-Token": token})
        assert left.status_code == 200 and left.json()["outcome"] == "answered"
        for stream in (customer_stream, agent_stream):
            assert stream.next()["event"] == "ended"
            assert stream.closed.wait(10), "the stream stays open after the chat ended"
    finally:
        customer_stream.close()
        agent_stream.close()

    # a reconnect after the end is told to stop (204), and the chat is closed for posting
    assert requests.get(f"{chats}/stream", params={"ticket": stream_ticket(chats, token), "after": "6"},
                        timeout=10).status_code == 204
    late = requests.post(f"{chats}/messages", timeout=10, headers={"X-Chat-Token": token}, json={"body": "one more"})
    assert late.status_code == 409 and late.json()["error"]["code"] == "chat_ended"

    # the transcript is on the ticket, as public messages by their authors
    api = stack.session()
    ticket = api.get(f"{url}/api/v1/tickets/{number}", timeout=10).json()
    assert (ticket["channel"], ticket["description"], ticket["requester"]["email"]) == (
        "chat", "My VPN drops every five minutes.", customer_email)

    def transcript():
        messages = api.get(f"{url}/api/v1/tickets/{number}/messages", timeout=10).json()
        return len(messages) >= 3 and messages

    messages = wait_for(transcript, timeout=30, what=f"the chat transcript on {number}")
    assert [(m["body"], m["visibility"], m["author_role"]) for m in messages] == [
        ("Hello Eva, which VPN client?", "public", "agent"), ("WireGuard 1.0.2", "public", "customer"),
        ("Please update to 1.0.3.", "public", "agent")]


def test_an_outsider_is_refused(stack):
    url = stack.url
    started = requests.post(f"{url}/api/v1/chats", timeout=10, json={
        "name": "Nils", "email": f"nils-{uuid.uuid4().hex[:6]}@example.se", "message": "Printer jam."}).json()
    chats = f"{url}/api/v1/chats/{started['chat']['id']}"
    mallory = stack.session(create_token(stack, "customer", email="mallory@example.com"))
    for answer in (mallory.get(f"{chats}/entries", timeout=10),
                   mallory.get(f"{chats}/stream", timeout=10),
                   mallory.post(f"{chats}/messages", json={"body": "hi"}, timeout=10),
                   requests.get(f"{chats}/entries", headers={"X-Chat-Token": "guessed"}, timeout=10),
                   requests.post(f"{chats}/stream-ticket", headers={"X-Chat-Token": "guessed"}, timeout=10),
                   requests.get(f"{chats}/stream", params={"ticket": "made-up"}, timeout=10),
                   requests.post(f"{chats}/leave", headers={"X-Chat-Token": "guessed"}, timeout=10)):
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "chat_not_found"
    joining = mallory.post(f"{chats}/join", timeout=10)
    assert joining.status_code == 403 and joining.json()["error"]["code"] == "role_not_allowed"
    anonymous = requests.post(f"{url}/api/v1/chats", json={"message": "hello"}, timeout=10)
    assert anonymous.status_code == 422
    assert {d["field"] for d in anonymous.json()["error"]["details"]} == {"name", "email"}
    # the rightful customer still reads it
    own = requests.get(f"{chats}/entries", headers={"X-Chat-Token": started["token"]}, timeout=10)
    assert own.status_code == 200 and [e["body"] for e in own.json()["entries"]] == ["Printer jam."]


def test_unanswered_chats_become_ordinary_routed_tickets(stack):
    url, api = stack.url, stack.session()
    with EventRecorder(stack.amqp_uri, source="routing") as routing:
        # one customer gives up and leaves; nobody answers the other in time
        gave_up = requests.post(f"{url}/api/v1/chats", timeout=10, json={
            "name": "Anna", "email": f"anna-{uuid.uuid4().hex[:6]}@example.se", "message": "Is anyone there?"}).json()
        left = requests.post(f"{url}/api/v1/chats/{gave_up['chat']['id']}/leave", timeout=10,
                             headers={"X-Chat-Token": gave_up["token"]})
        assert left.status_code == 200 and left.json()["outcome"] == "unanswered"
        ignored = requests.post(f"{url}/api/v1/chats", timeout=10, json={
            "name": "Olle", "email": f"olle-{uuid.uuid4().hex[:6]}@example.se", "message": "Mail is down",
            "subject": "Mail server down"}).json()
        chat_id, token = ignored["chat"]["id"], ignored["token"]

        def ended():
            timeline = requests.get(f"{url}/api/v1/chats/{chat_id}/entries", headers={"X-Chat-Token": token},
                                    timeout=10)
            chat = timeline.json()["chat"]
            return chat["state"] == "ended" and chat["ticket_number"] and timeline.json()

        timeline = wait_for(ended, timeout=ANSWER_TIMEOUT + 40, what="the unanswered chat to become a ticket")
        assert timeline["chat"]["outcome"] == "unanswered"
        assert timeline["entries"][-1]["kind"] == "ended"
        for number, subject, description in (
                (left.json()["ticket_number"] or wait_for(lambda: requests.get(
                    f"{url}/api/v1/chats/{gave_up['chat']['id']}/entries", headers={"X-Chat-Token": gave_up["token"]},
                    timeout=10).json()["chat"]["ticket_number"], what="the left chat's ticket"),
                 "Chat: Is anyone there?", "Is anyone there?"),
                (timeline["chat"]["ticket_number"], "Mail server down", "Mail is down")):
            ticket = api.get(f"{url}/api/v1/tickets/{number}", timeout=10).json()
            assert (ticket["channel"], ticket["subject"], ticket["description"]) == ("chat", subject, description)
            assert "chat-unanswered" in ticket["tags"]
            decided = wait_for(lambda: routing.of("ticket_queued", number) + routing.of("ticket_assigned", number),
                               timeout=30, what=f"routing to decide on {number}")
            assert decided
