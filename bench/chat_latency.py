"""Live chat: how long a message posted by an agent takes to reach the customer's open event stream.

Starts the gateway (two gunicorn workers, so streams and posts land on different processes), tickets and
intake as processes in a throwaway vhost; opens ``--chats`` chats, an agent joins each, each customer
holds a server-sent event stream, and the agent posts ``--messages`` messages per chat (chats in
parallel, messages in a chat one after another). Delivery is from just before the POST to the entry read
from the customer's stream. The baseline, in the same run, is the POST's own round trip (the message
committed and its event staged): delivery minus that is the fan-out (outbox relay, RabbitMQ, the
gateway's subscription, the stream's read of the timeline).

    .venv/bin/python bench/chat_latency.py [--chats 10] [--messages 20]
"""
import argparse
import os
import sys
import tempfile
import threading
import time
import warnings

warnings.simplefilter("ignore")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import requests  # noqa: E402

from tests.stack import Stack, create_token  # noqa: E402
from tests.test_chat_e2e import EventStream  # noqa: E402


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else float("nan")


def converse(url, agent_token, index, messages, posts, deliveries):
    started = requests.post(f"{url}/api/v1/chats", timeout=30, json={
        "name": f"Bench {index}", "email": f"bench-{index}@example.com", "message": "Hello"}).json()
    chats = f"{url}/api/v1/chats/{started['chat']['id']}"
    agent = requests.Session()
    agent.headers["Authorization"] = f"Bearer {agent_token}"
    agent.post(f"{chats}/join", timeout=30).raise_for_status()
    ticket = requests.post(f"{chats}/stream-ticket", headers={"X-Chat-Token": started["token"]}, timeout=30).json()
    stream = EventStream(f"{chats}/stream", params={"ticket": ticket["ticket"], "after": "2"})
    try:
        for n in range(messages):
            began = time.perf_counter()
            agent.post(f"{chats}/messages", json={"body": f"message {n}"}, timeout=30).raise_for_status()
            posted = time.perf_counter()
            event = stream.next(timeout=60)
            arrived = time.perf_counter()
            assert event["data"]["body"] == f"message {n}"
            posts.append(posted - began)
            deliveries.append(arrived - began)
    finally:
        stream.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=10)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        stack = Stack(workdir, gateway_workers=2, services=("intake",),
                      env={"HELPDESK_CHAT_KEEPALIVE": "1", "HELPDESK_CHAT_ANSWER_TIMEOUT": "3600"})
        try:
            stack.start()
            agent_token = create_token(stack, "agent")
            posts, deliveries = [], []
            threads = [threading.Thread(target=converse, args=(stack.url, agent_token, i, args.messages, posts,
                                                               deliveries)) for i in range(args.chats)]
            began = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - began
        finally:
            stack.stop()
    load = os.getloadavg()
    print(f"\nlive chat, {args.chats} chats x {args.messages} messages, 2 gateway workers "
          f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})\n")
    print("| measure | messages | msgs/s | p50 ms | p99 ms | p50 ratio to baseline |")
    print("|---|---:|---:|---:|---:|---:|")
    base = percentile(posts, 0.5)
    for name, values in (("POST (baseline)", posts), ("POST → customer's stream", deliveries)):
        print(f"| {name} | {len(values)} | {len(values) / elapsed:.0f} | {percentile(values, 0.5) * 1000:.1f} | "
              f"{percentile(values, 0.99) * 1000:.1f} | {percentile(values, 0.5) / base:.2f} |")


if __name__ == "__main__":
    main()
