"""Tickets created per second through the gateway, POST latency, and POST-to-event latency.

Starts the platform as real processes (as ``make run`` does) in a temporary folder and a throwaway
RabbitMQ vhost, drives ``POST /api/v1/tickets`` from client processes over keep-alive HTTP, and
listens on the ``tickets.events`` exchange for each ``ticket_created``. In the same run it measures
the raw broker: the same number of persistent messages published with confirms, at the same
concurrency, as the baseline the platform's figure is divided by. Prints a Markdown table.

    .venv/bin/python bench/tickets_throughput.py [--requests 2000] [--concurrency 1,16] [--db sqlite|postgres]
"""
import argparse
import http.client
import json
import multiprocessing as mp
import os
import statistics
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
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def subscriber(amqp_uri, ready, out, expected, stop):
    """Record when each ticket_created arrives, keyed by the ticket's subject."""
    arrivals = {}
    exchange = Exchange("tickets.events", type="topic", durable=True)
    with Connection(amqp_uri) as connection:
        queue = Queue(f"bench-{uuid.uuid4().hex[:8]}", exchange, routing_key="ticket_created",
                      exclusive=True, auto_delete=True)

        def on_message(body, message):
            arrivals[body["data"]["ticket"]["subject"]] = time.time()
            message.ack()

        with connection.Consumer(queue, callbacks=[on_message], accept=["json"]) as consumer:
            consumer.qos(prefetch_count=500)
            ready.set()
            deadline = None
            while True:
                if stop.is_set():
                    deadline = deadline or time.time() + 30
                    if len(arrivals) >= expected.value or time.time() > deadline:
                        break
                try:
                    connection.drain_events(timeout=0.2)
                except TimeoutError:
                    pass
                except Exception:
                    if connection.connection is None:
                        break
    out.put(arrivals)


def client(port, token, prefix, count, threads, results):
    """POST ``count`` tickets from ``threads`` keep-alive connections; report (subject, start, seconds)."""
    timings = []
    lock = threading.Lock()
    per_thread = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]

    def run(index, n):
        connection = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        local = []
        for i in range(n):
            subject = f"{prefix}-{index}-{i}"
            body = json.dumps({"subject": subject, "description": "The invoice PDF will not open.",
                               "requester": {"email": f"customer{i % 500}@example.com", "name": "Customer"},
                               "priority": "normal", "tags": ["billing"]})
            started = time.time()
            connection.request("POST", "/api/v1/tickets", body, headers)
            response = connection.getresponse()
            response.read()
            if response.status != 201:
                raise RuntimeError(f"POST answered {response.status}")
            local.append((subject, started, time.time() - started))
        with lock:
            timings.extend(local)

    workers = [threading.Thread(target=run, args=(i, n)) for i, n in enumerate(per_thread)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put(timings)


TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid):
    with open(f"/proc/{pid}/stat") as stream:
        fields = stream.read().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK  # ppid, cpu seconds (user+system)


def cpu_seconds(stack):
    """CPU time used so far by each part of the platform (gateway incl. workers, tickets, broker)."""
    parts = {"gateway": 0.0, "tickets": 0.0, "other services": 0.0, "broker": 0.0}
    roots = {stack.gateway.pid: "gateway", **{p.pid: "tickets" for p in stack.tickets},
             **{p.pid: "other services" for p in stack.services.values()}}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid, seconds = _proc_stat(entry)
            with open(f"/proc/{entry}/comm") as stream:
                name = stream.read().strip()
        except OSError:
            continue
        pid = int(entry)
        if pid in roots:
            parts[roots[pid]] += seconds
        elif ppid in roots:
            parts[roots[ppid]] += seconds
        elif name == "beam.smp":
            parts["broker"] += seconds
    return parts


def drive(stack, requests_total, concurrency, label):
    """Run one load level; returns figures for the table."""
    processes = min(concurrency, 4)
    threads = concurrency // processes
    ready, stop = mp.Event(), mp.Event()
    expected = mp.Value("i", requests_total)
    arrivals_out, results = mp.Queue(), mp.Queue()
    listener = mp.Process(target=subscriber, args=(stack.amqp_uri, ready, arrivals_out, expected, stop))
    listener.start()
    ready.wait(30)
    per_process = [requests_total // processes + (1 if i < requests_total % processes else 0)
                   for i in range(processes)]
    cpu_before = cpu_seconds(stack)
    started = time.time()
    clients = [mp.Process(target=client, args=(stack.port, stack.token, f"{label}-{p}", n, threads, results))
               for p, n in enumerate(per_process)]
    for proc in clients:
        proc.start()
    timings = []
    for _ in clients:
        timings.extend(results.get())
    elapsed = time.time() - started
    for proc in clients:
        proc.join()
    cpu_after = cpu_seconds(stack)
    stop.set()
    arrivals = arrivals_out.get()
    listener.join()
    latencies = [seconds for _, _, seconds in timings]
    event_delays = [arrivals[subject] - start for subject, start, _ in timings if subject in arrivals]
    return {
        "rate": len(timings) / elapsed,
        "p50": percentile(latencies, 0.5) * 1000, "p99": percentile(latencies, 0.99) * 1000,
        "event_p50": percentile(event_delays, 0.5) * 1000, "event_p99": percentile(event_delays, 0.99) * 1000,
        "events": len(event_delays), "sent": len(timings),
        "cpu_ms": {part: (cpu_after[part] - cpu_before[part]) * 1000 / max(1, len(timings)) for part in cpu_after},
    }


def raw_broker(amqp_uri, total, concurrency):
    """Persistent messages published with confirms from ``concurrency`` connections: the baseline."""
    name = f"bench-raw-{uuid.uuid4().hex[:8]}"
    with Connection(amqp_uri) as connection:
        Queue(name, durable=True)(connection.channel()).declare()
    body = json.dumps({"subject": "x" * 40, "description": "The invoice PDF will not open."})
    latencies, lock = [], threading.Lock()

    def publish(n):
        local = []
        with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
            producer = connection.Producer()
            for _ in range(n):
                started = time.perf_counter()
                producer.publish(body, routing_key=name, delivery_mode=2, content_type="application/json",
                                 content_encoding="utf-8")
                local.append(time.perf_counter() - started)
        with lock:
            latencies.extend(local)

    shares = [total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)]
    threads = [threading.Thread(target=publish, args=(n,)) for n in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    with Connection(amqp_uri) as connection:
        Queue(name)(connection.channel()).delete()
    return {"rate": total / elapsed, "p50": percentile(latencies, 0.5) * 1000,
            "p99": percentile(latencies, 0.99) * 1000}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="tickets per load level")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated client counts")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--gateway-workers", type=int, default=1)
    parser.add_argument("--tickets-replicas", type=int, default=1)
    parser.add_argument("--platform", choices=("core", "full"), default="core",
                        help="core: gateway and tickets (the path this measures); full: every service running, "
                             "each reacting to every ticket (routing assigns it, kb_search suggests articles, ...)")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-") as workdir:
        db_url = None
        if args.db == "postgres":
            import psycopg2

            name = f"bench_{uuid.uuid4().hex[:8]}"
            admin = psycopg2.connect("dbname=postgres user=postgres host=127.0.0.1")
            admin.autocommit = True
            admin.cursor().execute(f"CREATE DATABASE {name}")
            db_url = f"postgresql://postgres@127.0.0.1/{name}"
        stack = Stack(workdir, tickets_db_url=db_url, gateway_workers=args.gateway_workers,
                      services=() if args.platform == "core" else ("intake", "routing", "kb_search"))
        try:
            stack.start(tickets_replicas=args.tickets_replicas)
            print(f"processes: gateway {stack.gateway.pid}, tickets {[p.pid for p in stack.tickets]}", flush=True)
            drive(stack, min(200, args.requests), levels[-1], "warmup")
            rows = []
            for concurrency in levels:
                figures = drive(stack, args.requests, concurrency, f"c{concurrency}")
                baseline = raw_broker(stack.amqp_uri, args.requests, concurrency)
                rows.append((concurrency, figures, baseline))
        finally:
            stack.stop()
            if db_url:
                admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print(f"\nTickets through the gateway ({args.requests} per level, platform: {args.platform}, database: {args.db}, "
          f"{os.cpu_count()} cores, gateway workers: {args.gateway_workers}, "
          f"tickets replicas: {args.tickets_replicas})\n")
    print("| clients | tickets/s | POST p50 ms | POST p99 ms | POST→event p50 ms | POST→event p99 ms "
          "| events seen | raw broker msgs/s | broker p99 ms | tickets/s ÷ broker msgs/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for concurrency, f, b in rows:
        print(f"| {concurrency} | {f['rate']:.0f} | {f['p50']:.1f} | {f['p99']:.1f} | {f['event_p50']:.1f} "
              f"| {f['event_p99']:.1f} | {f['events']}/{f['sent']} | {b['rate']:.0f} | {b['p99']:.1f} "
              f"| {f['rate'] / b['rate']:.2f} |")
    print("\nCPU time per ticket (ms), measured from /proc while each level ran: what bounds the rate on 2 cores\n")
    parts = list(rows[0][1]["cpu_ms"])
    print("| clients | " + " | ".join(parts) + " | total |")
    print("|---:|" + "---:|" * (len(parts) + 1))
    for concurrency, f, _ in rows:
        cpu = f["cpu_ms"]
        print(f"| {concurrency} | " + " | ".join(f"{cpu[p]:.2f}" for p in parts) + f" | {sum(cpu.values()):.2f} |")


if __name__ == "__main__":
    main()
