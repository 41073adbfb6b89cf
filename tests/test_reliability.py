"""Nothing lost, nothing doubled: processes are killed at the worst moment and the platform recovers."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from stack import EventRecorder, new_ticket
from stack import wait_for

pytestmark = pytest.mark.e2e

FAILPOINT_EXIT = 86  # helpdesk_common.failpoints.EXIT_CODE


def replace_tickets_service(platform, **env):
    """Stop every tickets replica and start one new one with ``env``."""
    for process in platform.tickets:
        platform.stop_process(process)
    platform.tickets.clear()
    return platform.start_tickets(**env)


def post_until_answered(platform, api, body, key, attempts=60):
    """POST with an Idempotency-Key until the platform answers, as a well-behaved client retries."""
    for _ in range(attempts):
        response = api.post(f"{platform.url}/api/v1/tickets", json=body, headers={"Idempotency-Key": key})
        if response.status_code in (200, 201):
            return response
        assert response.status_code == 503, response.text
        time.sleep(0.2)  # a client's back-off before its retry, not a wait for a condition
    raise AssertionError("the platform never answered")


def test_a_crash_between_commit_and_publish_loses_no_event(platform, api, events):
    dying = replace_tickets_service(platform, HELPDESK_FAILPOINT="outbox.before_publish")
    wait_for(lambda: platform.healthy(), timeout=30, what="the service to come up")
    body, key = new_ticket(subject="Crash test"), f"crash-{uuid.uuid4()}"
    api.post(f"{platform.url}/api/v1/tickets", json=body, headers={"Idempotency-Key": key})
    assert dying.wait(30) == FAILPOINT_EXIT, "the service should have died right after its commit"
    assert events.of("ticket_created") == [] or all(
        e["data"]["ticket"]["subject"] != "Crash test" for e in events.of("ticket_created"))

    replace_tickets_service(platform)
    number = post_until_answered(platform, api, body, key).json()["number"]  # the same ticket, not a new one
    arrived = events.wait("ticket_created", number)
    assert len(arrived) == 1 and arrived[0]["data"]["ticket"]["subject"] == "Crash test"


def test_a_crash_after_publishing_before_marking_sent_republishes_and_routing_decides_once(platform, api, events):
    """The relay published the outbox rows, then the process died before it marked them sent. The next
    process publishes them again (at least once: the same event id twice) and the consumer acts once."""
    with EventRecorder(platform.amqp_uri, source="routing") as decisions:
        dying = replace_tickets_service(platform, HELPDESK_FAILPOINT="outbox.after_publish")
        wait_for(lambda: platform.healthy(), timeout=30, what="the service to come up")
        body, key = new_ticket(subject=f"Published then crashed {uuid.uuid4().hex[:6]}"), f"after-{uuid.uuid4()}"
        api.post(f"{platform.url}/api/v1/tickets", json=body, headers={"Idempotency-Key": key})
        assert dying.wait(30) == FAILPOINT_EXIT, "the service should have died right after publishing"
        mine = lambda: [e for e in events.of("ticket_created") if e["data"]["ticket"]["subject"] == body["subject"]]
        wait_for(lambda: len(mine()) == 1, timeout=20, what="the event published before the crash")

        replace_tickets_service(platform)
        number = post_until_answered(platform, api, body, key).json()["number"]  # the same ticket
        wait_for(lambda: len(mine()) == 2, timeout=30, what="the unmarked row published again")
        assert {e["id"] for e in mine()} == {mine()[0]["id"]}  # the same event, not a second ticket_created
        # A later ticket's decision comes after routing took the repeated event from its queue.
        later = post_until_answered(platform, api, new_ticket(subject="After the repeat"), f"later-{uuid.uuid4()}")
        decisions.wait("ticket_queued", later.json()["number"], timeout=30)
        decided = decisions.of("ticket_queued", number) + decisions.of("ticket_assigned", number)
        assert len(decided) == 1, decided  # routing acted on the ticket once
    routing = api.get(f"{platform.url}/api/v1/tickets/{number}/routing").json()
    assert routing["state"] == "queued"


def test_a_service_killed_under_load_loses_no_ticket_and_doubles_none(platform, api, events):
    replace_tickets_service(platform)
    platform.wait_healthy()
    keys = [f"load-{uuid.uuid4()}" for _ in range(120)]
    numbers, errors = {}, []

    def client(share):
        session = platform.session()
        for key in share:
            try:
                numbers[key] = post_until_answered(platform, session, new_ticket(subject=key), key).json()["number"]
            except Exception as error:  # reported below, with the key
                errors.append((key, error))

    threads = [threading.Thread(target=client, args=(keys[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(numbers) >= 30, timeout=60, what="load to be under way")
    victim = platform.tickets[-1]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    platform.start_tickets()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[:3]
    assert len(numbers) == len(keys) and len(set(numbers.values())) == len(keys)
    # every ticket announced at least once (at least once delivery may repeat an event, never drop one)
    wait_for(lambda: set(numbers.values()) <= {e["subject"] for e in events.of("ticket_created")},
             timeout=60, what="every ticket_created event")
    listed, cursor = [], None
    while True:  # every page of the list: a doubled ticket would show as a subject listed twice
        page = api.get(f"{platform.url}/api/v1/tickets",
                       params={"text": "load-", "limit": 50, **({"cursor": cursor} if cursor else {})}).json()
        listed += [(t["subject"], t["number"]) for t in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor or len(listed) > 2 * len(keys):
            break
    assert sorted(listed) == sorted(numbers.items())  # each request exactly one ticket, no other


CLIENT = r"""
import json, sys, threading, requests
url, token, prefix, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
numbers, lock = [], threading.Lock()
def work(part):
    s = requests.Session(); s.headers["Authorization"] = "Bearer " + token
    for i in part:
        r = s.post(url + "/api/v1/tickets", json={"subject": f"{prefix}-{i}", "description": "d",
                   "requester": {"email": f"{prefix}-{i % 7}@example.com"}})
        r.raise_for_status()
        with lock: numbers.append(r.json()["number"])
threads = [threading.Thread(target=work, args=(range(t, count, 8),)) for t in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(numbers))
"""


def test_concurrent_creation_from_several_processes_never_repeats_a_number(platform):
    replace_tickets_service(platform)
    platform.start_tickets()  # two replicas of the tickets service share one database
    platform.wait_healthy()
    clients = [subprocess.Popen([sys.executable, "-c", CLIENT, platform.url, platform.token, f"p{p}", "60"],
                                stdout=subprocess.PIPE, env=platform.env()) for p in range(3)]
    numbers = []
    for process in clients:
        out, _ = process.communicate(timeout=180)
        assert process.returncode == 0
        numbers += json.loads(out)
    assert len(numbers) == 180
    assert len(set(numbers)) == 180, "a ticket number was handed out twice"
