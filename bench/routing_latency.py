"""Delay from ``ticket_created`` to ``ticket_assigned`` while tickets arrive at a steady rate.

Starts the gateway, tickets and routing as processes (as ``make run`` does) in a throwaway vhost,
creates a team of online agents through the API, then opens tickets at ``--rate`` per second (open loop:
the pace does not wait for answers) and records when each ``ticket_created`` (tickets.events) and each
``ticket_assigned`` (routing.events) reaches a subscriber. The baseline, in the same run, is the delay
from the POST to ``ticket_created``: what the platform takes before routing starts.

    .venv/bin/python bench/routing_latency.py [--rate 50] [--seconds 20] [--agents 100]
"""
import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
import warnings

warnings.simplefilter("ignore")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kombu import Connection, Exchange, Queue  # noqa: E402

from tests.stack import Stack  # noqa: E402


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else float("nan")


class Arrivals:
    """When each ticket's ticket_created and ticket_assigned reached us, by ticket number."""

    def __init__(self, amqp_uri):
        self.created, self.assigned = {}, {}
        self.ready, self.stop = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, args=(amqp_uri,), daemon=True)

    def _run(self, amqp_uri):
        with Connection(amqp_uri) as connection:
            queues = [Queue(f"bench-{uuid.uuid4().hex[:8]}", Exchange("tickets.events", "topic", durable=True),
                            routing_key="ticket_created", exclusive=True),
                      Queue(f"bench-{uuid.uuid4().hex[:8]}", Exchange("routing.events", "topic", durable=True),
                            routing_key="ticket_assigned", exclusive=True)]

            def arrived(body, message):
                now = time.time()
                if body["type"] == "ticket_created":
                    self.created.setdefault(body["data"]["ticket"]["number"], now)
                else:
                    self.assigned.setdefault(body["data"]["ticket_number"], now)
                message.ack()

            with connection.Consumer(queues, callbacks=[arrived], accept=["json"]):
                self.ready.set()
                while not self.stop.is_set():
                    try:
                        connection.drain_events(timeout=0.2)
                    except TimeoutError:
                        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50, help="tickets opened per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--agents", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-") as workdir:
        stack = Stack(workdir, services=("routing",))
        try:
            stack.start()
            http = stack.session()
            team = "bench"
            assert http.post(f"{stack.url}/api/v1/teams", json={"name": team, "strategy": "least_loaded"}).ok
            for i in range(args.agents):
                response = http.post(f"{stack.url}/api/v1/agents", json={
                    "name": f"Agent {i}", "email": f"agent{i}@example.com", "teams": [team], "capacity": 1000,
                    "presence": "online", "languages": ["en"]})
                assert response.status_code == 201, response.text
            arrivals = Arrivals(stack.amqp_uri)
            arrivals.thread.start()
            arrivals.ready.wait(30)
            posted, lock = {}, threading.Lock()
            total = int(args.rate * args.seconds)
            lanes = 8
            start = time.time() + 0.5

            def lane(index):
                session = stack.session()
                for n in range(index, total, lanes):
                    delay = start + n / args.rate - time.time()
                    if delay > 0:
                        time.sleep(delay)
                    sent = time.time()
                    answer = session.post(f"{stack.url}/api/v1/tickets", json={
                        "subject": f"Printer {n} jams", "description": "Paper jam on floor 2.", "team": team,
                        "language": "en", "requester": {"email": f"c{n % 97}@example.com"}})
                    if answer.status_code == 201:
                        with lock:
                            posted[answer.json()["number"]] = sent

            threads = [threading.Thread(target=lane, args=(i,)) for i in range(lanes)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            deadline = time.time() + 60
            while len(arrivals.assigned) < len(posted) and time.time() < deadline:
                time.sleep(0.2)
            arrivals.stop.set()
        finally:
            stack.stop()
    routed = [arrivals.assigned[n] - arrivals.created[n] for n in posted if n in arrivals.assigned and n in arrivals.created]
    before = [arrivals.created[n] - sent for n, sent in posted.items() if n in arrivals.created]
    print(f"\nRouting delay ({args.rate:g} tickets/s offered for {args.seconds:g} s, {args.agents} agents online, "
          f"SQLite, {os.cpu_count()} cores)\n")
    print("| measure | tickets | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    print(f"| ticket_created → ticket_assigned | {len(routed)}/{len(posted)} | {percentile(routed, .5) * 1000:.1f} "
          f"| {percentile(routed, .99) * 1000:.1f} |")
    print(f"| baseline: POST → ticket_created | {len(before)}/{len(posted)} | {percentile(before, .5) * 1000:.1f} "
          f"| {percentile(before, .99) * 1000:.1f} |")


if __name__ == "__main__":
    main()
