"""Rate limits and live-stream limits against the real gateway (gunicorn, two workers) counting in the real
Redis on 127.0.0.1:6379, with every service running.

Each test speaks from its own client address (``X-Forwarded-For`` through one trusted proxy hop,
``HELPDESK_PROXY_HOPS=1``), so the tests' budgets do not mix. Two workers and a fresh connection per request:
a count kept per process would let twice the budget through; Redis lets exactly the budget through.
"""
import uuid

import pytest
import redis
import requests

from stack import Stack, create_token, wait_for

pytestmark = pytest.mark.e2e

REDIS = "redis://127.0.0.1:6379/0"
BUDGET = 5


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    prefix = f"hdtest-{uuid.uuid4().hex[:8]}"
    stack = Stack(tmp_path_factory.mktemp("stack-limits"), gateway_workers=2, env={
        "HELPDESK_RATE_LIMIT_STORAGE": REDIS, "HELPDESK_RATE_LIMIT_PREFIX": prefix, "HELPDESK_PROXY_HOPS": "1",
        "HELPDESK_RATE_LIMIT_ANONYMOUS": f"{BUDGET}/minute", "HELPDESK_RATE_LIMIT_TOKEN": f"{BUDGET}/minute",
        "HELPDESK_RATE_LIMIT_COSTLY": "2/minute", "HELPDESK_RATE_LIMIT_ADDRESS": "30/minute",
        "HELPDESK_STREAMS_PER_CHAT": "2", "HELPDESK_STREAMS_PER_ADDRESS": "3", "HELPDESK_CHAT_KEEPALIVE": "1"})
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        client = redis.Redis.from_url(REDIS)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


def address():
    """A client address of this test's own (documentation range, never a real client)."""
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}"


def get(stack, path, client, token=None, **kwargs):
    headers = {"X-Forwarded-For": client, **({"Authorization": f"Bearer {token}"} if token else {})}
    return requests.get(f"{stack.url}{path}", headers=headers, timeout=10, **kwargs)  # a new connection each time


def refused(answer, code="rate_limited"):
    assert answer.status_code == 429, answer.text
    assert answer.json()["error"]["code"] == code
    assert 1 <= int(answer.headers["Retry-After"]) <= 61
    return True


def test_a_visitor_gets_the_budget_across_both_workers_then_a_429_with_retry_after(stack):
    client = address()
    answers = [get(stack, "/api/v1/kb/search?q=vpn", client).status_code for _ in range(BUDGET * 3)]
    assert answers.count(200) == BUDGET and answers[:BUDGET] == [200] * BUDGET
    assert refused(get(stack, "/api/v1/kb/search?q=vpn", client))
    assert get(stack, "/api/v1/kb/search?q=vpn", address()).status_code == 200  # another address is not held up


def test_a_token_has_its_own_budget_wherever_it_comes_from(stack):
    token = create_token(stack, "agent")
    answers = [get(stack, "/api/v1/workflow", address(), token).status_code for _ in range(BUDGET + 2)]
    assert answers == [200] * BUDGET + [429] * 2
    assert refused(get(stack, "/api/v1/workflow", address(), token))
    assert get(stack, "/api/v1/workflow", address(), create_token(stack, "agent")).status_code == 200


def test_made_up_tokens_meet_the_per_address_limit(stack):
    client = address()
    answers = [get(stack, "/api/v1/workflow", client, f"hd_made_up_{n}").status_code for n in range(32)]
    assert answers == [401] * 30 + [429] * 2  # each a new token, but one address


def test_routes_that_store_something_have_a_tighter_budget_per_visitor(stack):
    client = address()
    chat = {"message": "Hello?", "name": "Eva", "email": "eva@example.se"}
    started = [requests.post(f"{stack.url}/api/v1/chats", json=chat, headers={"X-Forwarded-For": client},
                             timeout=10) for _ in range(3)]
    assert [answer.status_code for answer in started] == [201, 201, 429]
    assert refused(started[-1])
    assert get(stack, "/api/v1/kb/search?q=vpn", client).status_code == 200  # reading is still allowed


def test_the_openapi_document_declares_429_with_retry_after_on_every_limited_route(stack):
    document = get(stack, "/api/openapi.json", address()).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path in ("/health", "/metrics"):  # probes poll them; both answer from memory
                assert "429" not in operation["responses"]
            else:
                assert "Retry-After" in operation["responses"]["429"]["headers"], (method, path)


def test_probes_are_not_limited(stack):
    client = address()
    assert {get(stack, "/health", client).status_code for _ in range(BUDGET * 2)} == {200}


def open_stream(stack, chat, client):
    """The chat's customer follows it, each time with a token of their own (so no token's budget runs out)."""
    token = create_token(stack, "customer", email=chat["email"])
    return requests.get(f"{stack.url}/api/v1/chats/{chat['id']}/stream", headers={
        "X-Forwarded-For": client, "Authorization": f"Bearer {token}"}, stream=True, timeout=(5, 30))


def start_chat(stack):
    email = f"{uuid.uuid4().hex[:8]}@example.no"
    answer = requests.post(f"{stack.url}/api/v1/chats", headers={"X-Forwarded-For": address()}, timeout=10,
                           json={"message": "Printer on fire", "name": "Ola", "email": email})
    assert answer.status_code == 201, answer.text
    return {"id": answer.json()["chat"]["id"], "email": email}


def test_live_streams_are_limited_per_chat_and_per_address_and_a_closed_one_frees_its_slot(stack):
    client = address()
    chat = start_chat(stack)
    first, second = open_stream(stack, chat, client), open_stream(stack, chat, client)
    assert (first.status_code, second.status_code) == (200, 200)
    try:
        assert refused(open_stream(stack, chat, client), "too_many_streams")  # a third on the same chat
        third = open_stream(stack, start_chat(stack), client)
        assert third.status_code == 200
        assert refused(open_stream(stack, start_chat(stack), client), "too_many_streams")  # a fourth from the address
        third.close()
        first.close()

        def reopened():
            answer = open_stream(stack, chat, client)
            if answer.status_code == 200:
                return answer
            answer.close()
            return None

        # A closed connection is noticed at the next keep-alive (every second here); then its slot is free.
        wait_for(reopened, timeout=20, interval=1.0, what="a freed stream slot").close()
    finally:
        first.close()
        second.close()
