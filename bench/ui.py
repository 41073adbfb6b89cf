"""The agent workspace's pages at 10,000 and 100,000 tickets, beside the REST API's figure for the same read,
and the delay from a customer's reply to the agent's open ticket page hearing of it (the live stream).

    .venv/bin/python bench/ui.py                         # 10,000 and 100,000 tickets, 300 requests a row
    .venv/bin/python bench/ui.py --tickets 10000 --requests 100 --replies 50
    .venv/bin/python bench/ui.py --tickets 100000 --seed-cache /tmp/ui-seeds   # compare runs on one desk

For each size, a fresh platform as ``make run`` starts it (``tests/stack.py``: every service, the gateway
on gunicorn with 2 workers, SQLite files, a throwaway RabbitMQ vhost) on a tickets database seeded first:

- **seeding**: the tickets are opened by the tickets service's own domain code (``domain.open_tickets``,
  batches of 1,000 in one transaction each: contacts, numbers, history, SLA clocks as in production),
  opened at times spread over the last 60 days; then plain UPDATEs give a desk's mix (85 % closed, 5 %
  resolved, 10 % still open, new, pending or in progress; their clocks stopped when solved) and assignees
  (two in three tickets), record the warnings and breaches the SLA timer
  would have announced, and empty the outbox (a seeded past is not announced to the services).
- **pages**: one signed-in admin's session, one request at a time over a keep-alive connection. Time to
  first byte (``requests``' ``elapsed``: request sent to headers parsed; Flask renders the whole page
  before its first byte) of ``GET /workspace/tickets`` (view all, last changed first, 25 rows, with the
  sidebar's six exact counts) and ``GET /workspace/tickets/<number>`` (a random ticket each time), beside
  ``GET /api/v1/tickets?view=all&sort=updated`` / ``GET /api/v1/tickets/counts`` and
  ``GET /api/v1/tickets/<number>`` with the admin token: the same reads without the page around them.
- **live delay**: the admin's open ticket page's stream (``/workspace/live?ticket=``) is read in a thread;
  the ticket's customer posts a reply (``POST .../messages`` with a customer token) every 200 ms; the
  delay is from sending the POST to the ``ticket`` event arriving, and to the page's refreshed parts
  (``GET .../parts``, what the page fetches on that event) being received.

- **profile** (``--profile``): the gateway's app built in this process (the stack's settings), signed in
  through Flask's test client against the running services, and ``--profile`` list pages and ticket pages
  under cProfile; prints where each page's wall time goes (the functions with the most cumulative time,
  and the page's RPC round trips). ``py-spy`` is not installed here; cProfile sees the same calls.

Figures only; no test asserts them. The machine is shared: see bench/README.md for how to read them.
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from datetime import timedelta

warnings.simplefilter("ignore")
_HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(_HERE)
sys.path.insert(0, ROOT)

import requests  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from helpdesk_common.adapters.database import engine_for  # noqa: E402
from helpdesk_common.contracts.tickets import NewTicket, Viewer  # noqa: E402
from helpdesk_common.database import utcnow  # noqa: E402
from helpdesk_tickets import domain  # noqa: E402
from helpdesk_tickets.migrate import upgrade  # noqa: E402
from helpdesk_tickets.sla import SlaPolicies  # noqa: E402
from helpdesk_tickets.workflow import Workflow  # noqa: E402
from tests.stack import BIN, Stack, create_token  # noqa: E402

PASSWORD = "bench password 1234"
TEAMS = ("network", "billing", "support", "hardware")
CHANNELS = ("email", "web", "chat", "phone", "api")
PRIORITIES = ("low", "normal", "normal", "normal", "high", "urgent")
WORDS = ("printer vpn password invoice laptop screen login mailbox account access error urgent please help "
         "since yesterday morning cannot open the shared drive after update again").split()
SYSTEM = Viewer(actor="bench-seed", role="system")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


# --- seeding -----------------------------------------------------------------------------------------

def seed(db_url, count, rng, batch=1000):
    """``count`` tickets through ``domain.open_tickets``; returns (seconds, numbers of a sample)."""
    upgrade(db_url)
    rules = domain.Rules(workflow=Workflow.load(), sla=SlaPolicies.load())
    sessions = sessionmaker(engine_for(db_url), expire_on_commit=False)
    now = utcnow()
    started = time.perf_counter()
    for first in range(0, count, batch):
        size = min(batch, count - first)
        opened = now - timedelta(days=60) + timedelta(seconds=60 * 86400 * (first + size) / count)
        requests_ = []
        for n in range(first, first + size):
            sender = rng.randrange(2000)
            requests_.append((NewTicket.model_validate({
                "subject": f"{rng.choice(WORDS)} {rng.choice(WORDS)} problem #{n}",
                "description": " ".join(rng.choice(WORDS) for _ in range(40)),
                "requester": {"email": f"customer{sender}@example.com", "name": f"Customer {sender}"},
                "channel": rng.choice(CHANNELS), "team": rng.choice(TEAMS), "priority": rng.choice(PRIORITIES),
                "tags": rng.sample(WORDS, 2)}), SYSTEM, None))
        with sessions.begin() as session:
            domain.open_tickets(session, requests_, rules, now=opened)
    with sessions.begin() as session:
        # A desk's mix: most of its past solved (85 % closed, 5 % resolved), a tenth still being worked.
        session.execute(text("UPDATE tickets SET status = 'closed', closed_at = updated_at, resolved_at = updated_at "
                             "WHERE id % 20 < 17"))
        session.execute(text("UPDATE tickets SET status = 'resolved', resolved_at = updated_at WHERE id % 20 = 17"))
        session.execute(text("UPDATE tickets SET status = 'open' WHERE id % 20 = 18"))
        session.execute(text("UPDATE tickets SET status = CASE id % 3 WHEN 0 THEN 'pending' WHEN 1 THEN 'in_progress' "
                             "ELSE 'new' END WHERE id % 20 = 19"))
        session.execute(text("UPDATE tickets SET assignee = 'agent-' || (id % 40) WHERE id % 3 > 0"))
        session.execute(text("UPDATE sla_clocks SET stopped_at = started_at WHERE ticket_id IN "
                             "(SELECT id FROM tickets WHERE status IN ('closed', 'resolved'))"))
        session.execute(text("UPDATE sla_clocks SET paused_at = :now WHERE stopped_at IS NULL AND ticket_id IN "
                             "(SELECT id FROM tickets WHERE status = 'pending')"), {"now": now})
        session.execute(text("UPDATE sla_clocks SET warned_at = warn_at WHERE warn_at <= :now"), {"now": now})
        session.execute(text("UPDATE sla_clocks SET breached_at = due_at WHERE due_at <= :now"), {"now": now})
        session.execute(text("DELETE FROM outbox"))
        numbers = [row[0] for row in session.execute(text("SELECT number FROM tickets ORDER BY random() LIMIT 2000"))]
        # the live delay's ticket: one still open, so that its customer's replies are taken
        numbers.insert(0, session.execute(text("SELECT number FROM tickets WHERE status = 'open' LIMIT 1")).scalar())
    # No ANALYZE: nothing in the platform runs it, so a production SQLite database plans without statistics
    # (the runs before 2026-12-07 20:00 meant to ANALYZE here, but its transaction was rolled back).
    return time.perf_counter() - started, numbers


# --- the platform's side -----------------------------------------------------------------------------

def signed_in(stack, email, role="admin"):
    subprocess.run([os.path.join(BIN, "helpdesk"), "account", "create", "--email", email, "--role", role,
                    "--password", PASSWORD, "--name", f"Bench {role}"], cwd=ROOT, env=stack.env(), check=True,
                   capture_output=True)
    http = requests.Session()
    form = http.get(f"{stack.url}/sign-in", timeout=10).text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form).group(1)
    answer = http.post(f"{stack.url}/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": token},
                       allow_redirects=False, timeout=10)
    if answer.status_code != 302:
        raise SystemExit(f"sign-in failed: {answer.status_code} {answer.text[:300]}")
    return http


def team_agent(stack, email, team="network"):
    """A routing agent of one of the seeded teams (a quarter of the tickets) and its signed-in account: the
    person whose lists and counts are limited to a team."""
    api = stack.session()
    api.post(f"{stack.url}/api/v1/teams", json={"name": team}, timeout=10).raise_for_status()
    api.post(f"{stack.url}/api/v1/agents", json={"name": "Bench Agent", "email": email, "teams": [team],
                                                  "presence": "offline"}, timeout=10).raise_for_status()
    return signed_in(stack, email, role="agent")


def stack_cpu(stack):
    """CPU seconds (user + system) used so far by each of the stack's processes, by name: every process of
    its process group (the gateway's gunicorn master and workers together), read from /proc."""
    groups = {"tickets": stack.tickets[0].pid, "gateway": stack.gateway.pid,
              **{name: process.pid for name, process in stack.services.items()}}
    by_group = {pgid: 0.0 for pgid in groups.values()}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        pgid = int(fields[2])
        if pgid in by_group:
            by_group[pgid] += (int(fields[11]) + int(fields[12])) / ticks
    return {name: by_group[pgid] for name, pgid in groups.items()}


def timed(http, url, requests_count, paths):
    """TTFB and whole-answer seconds of GET each of ``paths`` (cycled) ``requests_count`` times."""
    first_bytes, wholes = [], []
    for i in range(requests_count):
        started = time.perf_counter()
        answer = http.get(url + paths[i % len(paths)], stream=True, timeout=30)
        body = answer.content
        wholes.append(time.perf_counter() - started)
        first_bytes.append(answer.elapsed.total_seconds())
        if answer.status_code != 200:
            raise SystemExit(f"GET {paths[i % len(paths)]}: {answer.status_code} {body[:300]!r}")
    return first_bytes, wholes


def live_delays(stack, page, number, replies, gap):
    """Seconds from a customer's reply (POST sent) to the open page's stream event, and to its refreshed
    parts received."""
    ticket = requests.get(f"{stack.url}/api/v1/tickets/{number}", timeout=10,
                          headers={"Authorization": f"Bearer {stack.token}"}).json()
    customer = stack.session(create_token(stack, "customer", email=ticket["requester"]["email"]))
    heard, ready = [], threading.Event()

    def listen():
        with page.get(f"{stack.url}/workspace/live", params={"ticket": number}, stream=True, timeout=60) as stream:
            for line in stream.iter_lines(decode_unicode=True):
                if line.startswith("retry:"):
                    ready.set()
                if line.startswith("event: ticket"):
                    heard.append(time.perf_counter())
                if len(heard) >= replies:
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    if not ready.wait(20):
        raise SystemExit("the live stream did not open")
    events, refreshed = [], []
    for i in range(replies):
        sent = time.perf_counter()
        answer = customer.post(f"{stack.url}/api/v1/tickets/{number}/messages",
                               json={"body": f"Still broken ({i})", "visibility": "public"}, timeout=10)
        if answer.status_code != 201:
            raise SystemExit(f"reply: {answer.status_code} {answer.text[:300]}")
        deadline = time.perf_counter() + 10
        while len(heard) <= i and time.perf_counter() < deadline:
            time.sleep(0.001)  # polling our own list: the bench's clock, not a test's wait
        if len(heard) <= i:
            raise SystemExit(f"reply {i}: no live event within 10 s")
        events.append(heard[i] - sent)
        page.get(f"{stack.url}/workspace/tickets/{number}/parts", timeout=10).content
        refreshed.append(time.perf_counter() - sent)
        time.sleep(gap)
    listener.join(5)
    return events, refreshed


def profile_pages(stack, email, numbers, repeat):
    """cProfile ``repeat`` list pages and ``repeat`` ticket pages in this process (Flask's test client, the
    running services); prints the top functions by cumulative time and the RPC round trips a page makes."""
    import cProfile
    import io
    import pstats

    os.environ.update(stack.env())
    from helpdesk_gateway.app import create_app
    from helpdesk_gateway.rpc import RpcPool
    from helpdesk_gateway.settings import Settings

    app = create_app(Settings())
    client = app.test_client()
    form = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form).group(1)
    client.post("/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": token})
    rounds = {"n": 0}
    for name in ("call", "gather"):
        original = getattr(RpcPool, name)

        def counted(self, *args, _original=original, **kwargs):
            rounds["n"] += 1
            return _original(self, *args, **kwargs)

        setattr(RpcPool, name, counted)
    for label, paths in (("list page /workspace/tickets?view=all", ["/workspace/tickets?view=all"]),
                         ("ticket page /workspace/tickets/<number>", [f"/workspace/tickets/{n}" for n in numbers[1:]])):
        for path in paths[:3]:
            client.get(path)  # warm: proxies, templates, the workflow
        rounds["n"] = 0
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for i in range(repeat):
            answer = client.get(paths[i % len(paths)])
            if answer.status_code != 200:
                raise SystemExit(f"profile: GET {paths[i % len(paths)]}: {answer.status_code}")
        profile.disable()
        wall = (time.perf_counter() - started) / repeat * 1000
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(25)
        print(f"\n## profile: {label}: {wall:.1f} ms a page (wall, in process), "
              f"{rounds['n'] / repeat:.1f} RPC rounds a page\n")
        print("\n".join(out.getvalue().splitlines()[6:40]))


def run_size(count, args, rng):
    workdir = tempfile.mkdtemp(prefix="ui-bench-")
    stack = None
    try:
        db_url = f"sqlite:///{workdir}/tickets.db"
        cached = os.path.join(args.seed_cache, f"tickets-{count}.db") if args.seed_cache else None
        if cached and os.path.exists(cached):
            # the same seeded desk for runs to be compared (a copy: the run migrates and changes it)
            shutil.copyfile(cached, f"{workdir}/tickets.db")
            numbers = open(cached + ".numbers").read().split()
            print(f"seeded desk of {count:,} tickets from {cached}; starting the platform ...", flush=True)
        else:
            print(f"seeding {count:,} tickets ...", flush=True)
            seconds, numbers = seed(db_url, count, rng)
            print(f"seeded in {seconds:.1f} s ({count / seconds:,.0f} tickets/s); starting the platform ...",
                  flush=True)
            if cached:
                os.makedirs(args.seed_cache, exist_ok=True)
                shutil.copyfile(f"{workdir}/tickets.db", cached)
                with open(cached + ".numbers", "w") as f:
                    f.write("\n".join(numbers))
        stack = Stack(workdir, tickets_db_url=db_url, gateway_workers=2)
        stack.start()
        page = signed_in(stack, "bench-admin@example.org")
        agent = team_agent(stack, "bench-agent@example.org")
        agent_api = stack.session(create_token(stack, "agent", teams=["network"]))
        api = stack.session()
        url = stack.url
        lists = ["/workspace/tickets?view=all"]
        tickets = [f"/workspace/tickets/{n}" for n in numbers[1:]]
        rest_lists = ["/api/v1/tickets?view=all&sort=updated&limit=25"]
        rest_tickets = [f"/api/v1/tickets/{n}" for n in numbers[1:]]
        timed(page, url, 30, lists + tickets[:30])  # warm-up: connections, RPC proxies, the database's pages
        timed(api, url, 30, rest_lists + rest_tickets[:30])
        timed(agent, url, 10, lists)
        timed(agent_api, url, 10, rest_lists)
        rows = []
        for label, http, paths in (
                ("page: GET /workspace/tickets (list, view all, with counts)", page, lists),
                ("REST: GET /api/v1/tickets?view=all&sort=updated", api, rest_lists),
                ("REST: GET /api/v1/tickets/counts", api, ["/api/v1/tickets/counts"]),
                ("page, agent of one team: GET /workspace/tickets?view=all", agent, lists),
                ("REST, agent of one team: GET /api/v1/tickets?view=all&sort=updated", agent_api, rest_lists),
                ("REST, agent of one team: GET /api/v1/tickets/counts", agent_api, ["/api/v1/tickets/counts"]),
                ("page: GET /workspace/tickets?view=sla_breached", page, ["/workspace/tickets?view=sla_breached"]),
                ("REST: GET /api/v1/tickets?view=sla_breached&sort=updated", api,
                 ["/api/v1/tickets?view=sla_breached&sort=updated&limit=25"]),
                ("page: GET /workspace/tickets/<number> (ticket)", page, tickets),
                ("REST: GET /api/v1/tickets/<number>", api, rest_tickets)):
            cpu_before = stack_cpu(stack)
            first_bytes, wholes = timed(http, url, args.requests, paths)
            cpu_after = stack_cpu(stack)
            cpu = {name: (cpu_after[name] - cpu_before[name]) / len(first_bytes) for name in cpu_after}
            rows.append((label, len(first_bytes), first_bytes, wholes, cpu))
        events, refreshed = live_delays(stack, page, numbers[0], args.replies, args.gap)
        if args.profile:
            profile_pages(stack, "bench-admin@example.org", numbers, args.profile)
        return rows, (events, refreshed)
    finally:
        if stack is not None:
            stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", default="10000,100000", help="sizes, comma-separated")
    parser.add_argument("--requests", type=int, default=300, help="requests timed per row")
    parser.add_argument("--replies", type=int, default=100, help="customer replies timed for the live delay")
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between replies")
    parser.add_argument("--profile", type=int, default=0, help="also cProfile this many list and ticket pages")
    parser.add_argument("--seed-cache", default="", help="a folder keeping each size's seeded database, so that "
                        "runs to be compared (before and after a change) start from the same desk")
    args = parser.parse_args(argv)
    rng = random.Random(14)
    load_before = os.getloadavg()[0]
    results = {}
    for count in (int(c) for c in args.tickets.split(",") if c.strip()):
        results[count] = run_size(count, args, rng)
    print(f"\nAgent workspace, SQLite, {os.cpu_count()} cores shared, gateway 2 gunicorn workers; one client, "
          f"keep-alive; 1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print("| tickets | read | n | TTFB p50 ms | TTFB p99 ms | whole p99 ms | p50 vs REST | CPU ms a request: "
          "tickets / gateway / routing / all |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for count, (rows, _live) in results.items():
        for index, (label, n, first_bytes, wholes, cpu) in enumerate(rows):
            p50 = percentile(first_bytes, 0.5) * 1000
            ratio = ""
            if label.startswith("page"):  # against the REST read right after it: the same read, no page
                twin = next(r for r in rows[index + 1:] if r[0].startswith("REST"))
                ratio = f"{p50 / (percentile(twin[2], 0.5) * 1000):.1f}x"
            print(f"| {count:,} | {label} | {n} | {p50:.1f} | {percentile(first_bytes, 0.99) * 1000:.1f} | "
                  f"{percentile(wholes, 0.99) * 1000:.1f} | {ratio} | {cpu['tickets'] * 1000:.1f} / "
                  f"{cpu['gateway'] * 1000:.1f} / {cpu.get('routing', 0) * 1000:.1f} / "
                  f"{sum(cpu.values()) * 1000:.1f} |")
    print("\n| tickets | live: customer's reply (POST sent) to | n | p50 ms | p99 ms | max ms |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for count, (_rows, (events, refreshed)) in results.items():
        for label, values in (("the open page's stream event", events),
                              ("the page's refreshed parts received", refreshed)):
            print(f"| {count:,} | {label} | {len(values)} | {percentile(values, 0.5) * 1000:.1f} | "
                  f"{percentile(values, 0.99) * 1000:.1f} | {max(values) * 1000:.1f} |")


if __name__ == "__main__":
    main()
