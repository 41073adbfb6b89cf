"""Routing decisions per second with 1,000 agents and 100,000 open tickets (p50/p99 per decision).

    .venv/bin/python bench/routing.py [--db-url URL] [--decisions 3000]

Builds a routing database (a SQLite file in a temporary folder by default; ``--db-url
postgresql://postgres@127.0.0.1/somedb`` for an existing empty PostgreSQL database) with 1,000 agents in
20 teams and 100,000 open tickets already assigned (loads to match), 20 routing rules, then routes new
tickets, measured in the same run:

- *baseline: commit floor*: the same database writes a decision ends in (routed ticket row, one
  conditional UPDATE of an agent, assignment row, outbox row), without rules or selection: what the
  database alone costs per decision.
- *selection in memory*: rules + language detection + ranking 50 candidates, no database.
- *routing decision (full, committed)*: ``domain.route_new_ticket`` end to end, one commit each.
- *batches of 200*: ``batch.route_new_tickets``, what the service does with the new tickets that arrive
  together (its collector); per second counts decisions, p50/p99 are per batch.
- *N replica processes at once* (``--processes``, default 2: the two cores): the same batches from
  several routing processes on the one database, as replicas run.

Each row also gives the CPU time the routing process(es) spent per decision (``time.process_time``):
on a shared, noisy machine it moves far less than the rates do.

Figures only, never asserted. The delay from ``ticket_created`` to ``ticket_assigned`` through the
broker is ``bench/routing_latency.py``.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

# This file is named like the service's package: keep its folder off the import path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != os.path.dirname(os.path.abspath(__file__))]

from sqlalchemy import insert, update
from sqlalchemy.orm import sessionmaker

from helpdesk_common.adapters.database import engine_for
from helpdesk_common.database import run_in_transaction, utcnow
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage
from helpdesk_routing import batch, domain
from helpdesk_routing.migrate import upgrade
from helpdesk_routing.models import Agent, AgentTeam, Assignment, Outbox, RoutedTicket, Rule, Team
from helpdesk_routing.rules import decide, ranked_agents

AGENTS, TEAMS, OPEN_TICKETS = 1000, 20, 100_000
BATCH = 200  # tickets per transaction on the batched path (the service takes what is waiting, up to this)
SKILLS = ["vpn", "printers", "billing", "sql", "email", "wifi", "sso", "mobile"]
LANGS = ["en", "nl", "sv"]
TEXTS = {"en": "The {p} does not work since this morning, can you please help me?",
         "nl": "De {p} werkt niet sinds vanochtend, kunnen jullie mij helpen?",
         "sv": "{p} fungerar inte sedan i morse, kan ni hjälpa mig?"}


def populate(sessions):
    rng = random.Random(7)
    now = utcnow()
    with sessions.begin() as session:
        session.execute(insert(Team), [{"name": f"team-{t}", "tier": 1, "strategy": "skills_and_load",
                                        "created_at": now} for t in range(TEAMS)])
        agents = []
        for i in range(AGENTS):
            agents.append({"id": i + 1, "name": f"Agent {i}", "email": f"a{i}@example.com",
                           "languages": rng.sample(LANGS, 2), "tier": 1, "capacity": 140, "load": 100,
                           "skills": {s: rng.randint(1, 5) for s in rng.sample(SKILLS, 4)}, "presence": "online",
                           "working_hours": None, "last_assignment_id": 0, "created_at": now, "updated_at": now})
        session.execute(insert(Agent), agents)
        session.execute(insert(AgentTeam), [{"agent_id": i + 1, "team": f"team-{i % TEAMS}"} for i in range(AGENTS)])
        for p, skill in enumerate(SKILLS * 2 + SKILLS[:4]):
            session.execute(insert(Rule), [{"position": p + 1, "name": f"rule-{p}", "enabled": True,
                                            "conditions": {"words": [skill, f"{skill}s"]} if p < 16 else
                                            {"categories": [f"cat-{p}"]},
                                            "actions": {"team": f"team-{p % TEAMS}",
                                                        "required_skills": {skill: 2}}, "created_at": now}])
    rows, assignments = [], []
    for n in range(OPEN_TICKETS):
        agent = n % AGENTS + 1
        rows.append({"number": f"OLD-{n:07d}", "state": "assigned", "team": f"team-{(agent - 1) % TEAMS}", "tier": 1,
                     "priority": "normal", "priority_rank": -1, "language": "en", "required_skills": {}, "rule": None,
                     "agent_id": agent, "status": "open", "reopen_count": 0, "created_at": now, "queued_at": None,
                     "updated_at": now})
        assignments.append({"ticket_number": f"OLD-{n:07d}", "agent_id": agent, "team": rows[-1]["team"], "tier": 1,
                            "at": now, "reason": "bench", "actor": "bench", "manual": False})
        if len(rows) == 10_000:
            with sessions.begin() as session:
                session.execute(insert(RoutedTicket), rows)
                session.execute(insert(Assignment), assignments)
            rows, assignments = [], []


def new_ticket(n, rng):
    language = rng.choice(LANGS)
    product = rng.choice(SKILLS)
    return {"number": f"NEW-{n:07d}", "subject": f"{product} problem", "description": TEXTS[language].format(p=product),
            "requester": {"email": "c@example.com"}, "channel": "email", "priority": rng.choice(["normal", "high"]),
            "status": "new", "team": None, "tier": 1, "language": None, "custom_fields": {}, "version": 1,
            "created_at": datetime.now(timezone.utc).isoformat()}


def timed(label, count, one, per_call=1):
    """(label, items per second, p50 ms, p99 ms per call, CPU ms of this process per item); ``per_call``
    items per call of ``one``."""
    latencies = []
    started, cpu = time.perf_counter(), time.process_time()
    for n in range(count):
        t0 = time.perf_counter()
        one(n)
        latencies.append(time.perf_counter() - t0)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    latencies.sort()
    return (label, count * per_call / elapsed, statistics.median(latencies) * 1000,
            latencies[int(len(latencies) * 0.99) - 1] * 1000, cpu * 1000 / (count * per_call))


def replica(url, prefix, rounds, start_at):
    """One routing replica of the last row: routes ``rounds`` batches from ``start_at`` (epoch seconds)
    and prints its timings as JSON."""
    sessions = sessionmaker(engine_for(url), expire_on_commit=False)
    rng = random.Random(prefix)
    tickets = [new_ticket(n, rng) for n in range(rounds * BATCH)]
    for ticket in tickets:
        ticket["number"] = f"{prefix}{ticket['number']}"
    settings = domain.Settings()
    time.sleep(max(0.0, start_at - time.time()))
    latencies, started, cpu = [], time.time(), time.process_time()
    for n in range(rounds):
        t0 = time.perf_counter()
        run_in_transaction(sessions, lambda s: batch.route_new_tickets(
            s, tickets[n * BATCH:(n + 1) * BATCH], settings, utcnow()), attempts=10)
        latencies.append(time.perf_counter() - t0)
    print(json.dumps({"started": started, "ended": time.time(), "latencies": latencies,
                      "cpu": time.process_time() - cpu}))


def replicas(url, processes, rounds):
    """``processes`` batched replicas at once on the same database: decisions per second in all."""
    start_at = time.time() + 3  # after every process imported and built its tickets
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--db-url", url,
                               "--batch", str(BATCH), "--replica", f"R{i}-", str(rounds), str(start_at)],
                              stdout=subprocess.PIPE, text=True)
             for i in range(processes)]
    results = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
    elapsed = max(r["ended"] for r in results) - min(r["started"] for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])
    return (f"batches of {BATCH}, {processes} replica processes at once", processes * rounds * BATCH / elapsed,
            statistics.median(latencies) * 1000, latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
            sum(r["cpu"] for r in results) * 1000 / (processes * rounds * BATCH))


def main(argv=None):
    global BATCH
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-url")
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--batch-rounds", type=int, default=None, help="batches to time (default: decisions/20)")
    parser.add_argument("--processes", type=int, default=2, help="batched replicas at once, last row")
    parser.add_argument("--batch", type=int, default=BATCH, help="tickets per batch (the service's largest batch)")
    parser.add_argument("--replica", nargs=3, metavar=("PREFIX", "ROUNDS", "START_AT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    BATCH = args.batch
    if args.replica:
        return replica(args.db_url, args.replica[0], int(args.replica[1]), float(args.replica[2]))
    folder = tempfile.mkdtemp(prefix="routing-bench-")
    url = args.db_url or f"sqlite:///{os.path.join(folder, 'routing.db')}"
    upgrade(url)
    sessions = sessionmaker(engine_for(url), expire_on_commit=False)
    t0 = time.perf_counter()
    populate(sessions)
    if engine_for(url).dialect.name == "postgresql":
        with engine_for(url).connect() as connection:  # fresh tables: give the planner its statistics
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
    print(f"populated {AGENTS} agents, {TEAMS} teams, {OPEN_TICKETS} open tickets in {time.perf_counter() - t0:.1f}s "
          f"({engine_for(url).dialect.name})", file=sys.stderr)
    settings = domain.Settings()
    rng = random.Random(11)
    count = args.decisions

    def floor(n):
        with sessions.begin() as session:
            number = f"FLOOR-{n:07d}"
            agent = n % AGENTS + 1
            session.execute(insert(RoutedTicket).values(number=number, state="assigned", team="team-0", tier=1,
                                                        priority="normal", priority_rank=-1, required_skills={},
                                                        agent_id=agent, created_at=utcnow(), updated_at=utcnow()))
            assignment = Assignment(ticket_number=number, agent_id=agent, team="team-0", tier=1, at=utcnow(),
                                    reason="floor", actor="bench", manual=False)
            session.add(assignment)
            session.flush()
            session.execute(update(Agent).where(Agent.id == agent, Agent.load < Agent.capacity + 10**6)
                            .values(load=Agent.load + 0, last_assignment_id=assignment.id))
            stage(session, Outbox, new_event("ticket_queued", {"ticket_number": number, "reason": "floor",
                                                               "queued_at": utcnow().isoformat()}))

    with sessions() as session:
        specs = domain.active_rules(session)
        pool = [domain._candidate(a) for a in session.query(Agent).limit(50)]
    memory_tickets = [new_ticket(n, rng) for n in range(count)]

    def in_memory(n):
        d = decide(specs, memory_tickets[n])
        ranked_agents(pool, tier=1, required_skills=d.required_skills, language=d.language,
                      strategy="skills_and_load", now=utcnow())

    tickets = [new_ticket(n, rng) for n in range(count)]
    outcomes = {}

    def full(n):
        view = sessions_route(tickets[n])
        outcomes[view["state"]] = outcomes.get(view["state"], 0) + 1

    def sessions_route(ticket):
        with sessions.begin() as session:
            return batch.route_new_ticket(session, ticket, settings, utcnow())

    rounds = args.batch_rounds or max(5, count // BATCH)  # within the skilled agents' free capacity
    batched_tickets = [new_ticket(count + n, rng) for n in range(rounds * BATCH)]
    for ticket in batched_tickets:
        ticket["number"] = "B" + ticket["number"]

    def batched(n):
        with sessions.begin() as session:
            views = batch.route_new_tickets(session, batched_tickets[n * BATCH:(n + 1) * BATCH], settings, utcnow())
        for view in views:
            outcomes_batched[view["state"]] = outcomes_batched.get(view["state"], 0) + 1

    outcomes_batched = {}
    rows = [timed("baseline: commit floor (same writes, no rules)", count, floor),
            timed("selection in memory (rules + 50 candidates)", count, in_memory),
            timed("routing decision (full, committed)", count, full)]
    # per decision: a batch of BATCH decisions per call; latency is per batch
    rows.append(timed(f"routing decisions in batches of {BATCH} (committed)", rounds, batched, per_call=BATCH))
    if args.processes > 1:
        rows.append(replicas(url, args.processes, rounds))
    print(f"\nRouting decisions: {AGENTS} agents, {OPEN_TICKETS} open tickets, {engine_for(url).dialect.name}, "
          f"{count} decisions per row, one process")
    print(f"{'what':<50} {'per second':>11} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/decision':>16}")
    for label, rate, p50, p99, cpu in rows:
        print(f"{label:<50} {rate:>11,.0f} {p50:>8.2f} {p99:>8.2f} {cpu:>16.3f}")
    print("(CPU: of the routing processes only, user + system; the database server's is not in it)")
    print(f"outcomes of the full decisions: {outcomes}; of the batched ones: {outcomes_batched}")
    print(f"(batched row: p50/p99 are per batch of {BATCH}; ratio to the one-by-one decisions: "
          f"{rows[3][1] / rows[2][1]:.1f}x, to the commit floor: {rows[3][1] / rows[0][1]:.1f}x)")
    if len(rows) > 4:
        print(f"({args.processes} replicas: {rows[4][1] / rows[2][1]:.1f}x the one-by-one decisions; "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
