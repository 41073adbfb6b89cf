"""CPU per ticket of the tickets service's ``create_tickets`` (``domain.open_tickets``), in process.

    .venv/bin/python bench/open_tickets.py [--postgresql] [--batches 10] [--rounds 2] [--batch 500] [--profile]

Opens batches of email tickets like the ones intake sends (subject, ~300-character description, the
requester's address and name from 200 senders, channel email, team "support", language en, an
idempotency key, the viewer ``intake``/system with a correlation id per mail), one transaction per
batch as the service does, on a SQLite file (default) or a throwaway PostgreSQL database
(``--postgresql``, ``helpdesk_common.testing.scratch_postgres_database``). A first batch, not timed,
creates the 200 contacts and warms the caches, so the timed batches are intake's steady state. Rows,
measured in the same run:

- *baseline: the same rows inserted raw*: the ticket, history, SLA clock, idempotency key and outbox
  rows one batch of ``open_tickets`` writes, built beforehand and inserted with
  ``helpdesk_common.bulk.insert_rows`` in one transaction per batch: what the database writes alone
  cost, whatever ``open_tickets`` does.
- *open_tickets, new mails*: the batches intake sends (every ticket created).
- *open_tickets, the same mails again*: a batch already committed, asked again (intake's retry after
  a crash): every answer ``created=False``.

The three rows run ``--rounds`` times, interleaved, so that the shared machine's noise falls on each
alike. CPU ms per ticket is this process's ``time.process_time``; p50/p99 are per batch (wall clock).
Figures only, never asserted (beyond every answer being created, then repeated, and the ticket count
at the end). ``--profile`` prints the cProfile of the new-mail batches to stderr.

Measured 2026-11-22, before (4d9f529) and after the plain-row writes, 3 runs each of 2 rounds of 10
batches (ranges; each baseline from the same run as the figures beside it):

| CPU ms/ticket | SQLite before | SQLite after | PostgreSQL before | PostgreSQL after |
|---|---:|---:|---:|---:|
| baseline: the same rows inserted raw | 0.12-0.14 | 0.12-0.24 | 0.074-0.088 | 0.064-0.086 |
| open_tickets, new mails | 0.38-0.46 | 0.21-0.28 | 0.47-0.57 | 0.21-0.26 |
| open_tickets, the same mails again | 0.80-0.91 | 0.27-0.31 | 1.07-1.21 | 0.24-0.30 |
"""
import argparse
import cProfile
import io
import math
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from helpdesk_common.bulk import allocate_ids, insert_rows
from helpdesk_common.contracts.tickets import NewTicket, Viewer
from helpdesk_common.adapters.database import engine_for
from helpdesk_common.database import utcnow
from helpdesk_common.testing import scratch_postgres_database
from helpdesk_tickets import domain, sla
from helpdesk_tickets.migrate import upgrade
from helpdesk_tickets.models import HistoryRecord, IdempotencyKey, Outbox, SlaClock, Ticket
from helpdesk_tickets.sla import SlaPolicies
from helpdesk_tickets.workflow import Workflow

SENDERS = 200
WORDS = ("printer vpn password invoice laptop screen login mailbox account access error urgent please "
         "help since yesterday morning cannot open the shared drive after update again").split()


def mails(first, count, rng):
    """``count`` requests ``(NewTicket, Viewer, idempotency key)`` as intake builds them, mails ``first``..."""
    requests = []
    for n in range(first, first + count):
        sender = n % SENDERS
        key = f"<{n}.{uuid.uuid4().hex[:8]}@mail.example.com>"
        description = " ".join(rng.choice(WORDS) for _ in range(60))[:300]
        command = NewTicket.model_validate({
            "subject": f"{rng.choice(WORDS)} {rng.choice(WORDS)} problem #{n}", "description": description,
            "requester": {"email": f"sender{sender}@customer.example.com", "name": f"Sender {sender}"},
            "channel": "email", "team": "support", "language": "en"})
        viewer = Viewer.model_validate({"actor": "intake", "role": "system", "correlation_id": f"mail:{key}"})
        requests.append((command, viewer, key))
    return requests


def raw_rows(session, requests, rules, now):
    """The rows ``open_tickets`` writes for ``requests`` (all new, senders known), built beforehand, with
    ticket ids 0..n-1 that :func:`insert_raw` replaces by real ones."""
    contacts = {email: id_ for email, id_ in session.execute(select(domain.Contact.email, domain.Contact.id))}
    clock_template = {}  # policy -> its clock rows (the bench's own: the baseline uses nothing of open_tickets)
    tickets, history, clock_rows, keys, outbox = [], [], [], [], []
    for ticket_id, (command, viewer, key) in enumerate(requests):
        ticket = {"id": ticket_id, "number": None, "subject": command.subject, "description": command.description,
                  "requester_id": contacts[command.requester.email], "requester_email": command.requester.email,
                  "requester_name": command.requester.name, "requester_ambiguous": False,
                  "channel": command.channel, "priority": command.priority, "severity": None, "status": "new",
                  "team": command.team, "tier": 1, "assignee": None, "language": command.language,
                  "category": None, "tags": [], "custom_fields": {}, "reopen_count": 0, "version": 1,
                  "created_at": now, "updated_at": now}
        tickets.append(ticket)
        history.append({"ticket_id": ticket_id, "at": now, "actor": viewer.actor, "field": "created", "old": None,
                        "new": {"channel": command.channel, "status": "new"}})
        policy = rules.sla.policy_for(command.priority, command.team)
        if policy.name not in clock_template:
            clocks = [SlaClock(metric=metric, started_at=now, pauses=[], elapsed_seconds=0.0) for metric in sla.METRICS]
            for clock in clocks:
                sla.sync(clock, policy, first_response_at=None, category=rules.workflow.category("new"), now=now)
            clock_template[policy.name] = [{column: getattr(clock, column) for column in domain.CLOCK_COLUMNS}
                                           for clock in clocks]
        clock_rows.extend({**row, "ticket_id": ticket_id} for row in clock_template[policy.name])
        keys.append({"client": viewer.actor, "key": key, "request_hash": "0" * 64, "ticket_id": ticket_id,
                     "created_at": now})
        outbox.append({"event_id": None, "event_type": "ticket_created", "created_at": now, "attempts": 0,
                       "envelope": {"type": "ticket_created", "correlation_id": viewer.correlation_id,
                                    "data": {"ticket": {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                                                        for k, v in ticket.items()}}}})
    return {"tickets": tickets, "history": history, "clocks": clock_rows, "keys": keys, "outbox": outbox}


def insert_raw(session, rows, rules):
    """Insert rows from :func:`raw_rows` with ids taken from the database, one statement per table."""
    ids = allocate_ids(session, Ticket.__table__, len(rows["tickets"]))
    for ticket, event in zip(rows["tickets"], rows["outbox"]):
        ticket["id"] = event["envelope"]["data"]["ticket"]["id"] = ids[ticket["id"]]
        ticket["number"] = rules.number_for(ticket["id"], ticket["created_at"])
        event["event_id"] = str(uuid.uuid4())
    for row in rows["history"] + rows["clocks"] + rows["keys"]:
        row["ticket_id"] = ids[row["ticket_id"]]
    for table, name in ((Ticket, "tickets"), (HistoryRecord, "history"), (SlaClock, "clocks"),
                        (IdempotencyKey, "keys"), (Outbox, "outbox")):
        insert_rows(session, table.__table__, rows[name])


def timed(label, batches, one):
    """Run ``one(batch)`` for each batch; (label, p50 ms, p99 ms per batch, CPU ms per ticket)."""
    latencies, tickets = [], 0
    cpu = time.process_time()
    for batch in batches:
        t0 = time.perf_counter()
        one(batch)
        latencies.append(time.perf_counter() - t0)
        tickets += len(batch["tickets"]) if isinstance(batch, dict) else len(batch)
    cpu = time.process_time() - cpu
    latencies.sort()
    return (label, statistics.median(latencies) * 1000, latencies[math.ceil(len(latencies) * 0.99) - 1] * 1000,
            cpu * 1000 / tickets)


def run(url, args):
    upgrade(url)
    sessions = sessionmaker(engine_for(url), expire_on_commit=False)
    rules = domain.Rules(workflow=Workflow.load(), sla=SlaPolicies.load())
    rng = random.Random(5)
    size = args.batch
    warm = max(size, SENDERS)  # every sender becomes a contact (small batches too); caches warm up
    with sessions.begin() as session:
        domain.open_tickets(session, mails(0, warm, rng), rules)
    new = [mails(warm + size * b, size, rng) for b in range(args.batches)]
    raw = [mails(warm + size * (args.batches + b), size, rng) for b in range(args.batches)]

    with sessions() as session:
        raw = [raw_rows(session, batch, rules, utcnow()) for batch in raw]

    def raw_batch(rows):
        with sessions.begin() as session:
            insert_raw(session, rows, rules)

    def open_batch(batch, created):
        with sessions.begin() as session:
            outcomes = domain.open_tickets(session, batch, rules)
        assert all(isinstance(o, tuple) and o[1] is created for o in outcomes), outcomes

    profile = cProfile.Profile() if args.profile else None
    rows = []
    for round_ in range(args.rounds):  # alternate, so that the machine's noise falls on every row alike
        part = slice(round_ * len(new) // args.rounds, (round_ + 1) * len(new) // args.rounds)
        run_ = f" (round {round_ + 1})"
        rows.append(timed("baseline: the same rows inserted raw (bulk.insert_rows)" + run_, raw[part], raw_batch))
        if profile:
            profile.enable()
        rows.append(timed(f"open_tickets, new mails, {size} per call" + run_, new[part],
                          lambda batch: open_batch(batch, True)))
        if profile:
            profile.disable()
        rows.append(timed(f"open_tickets, the same mails again (created=False), {size} per call" + run_, new[part],
                          lambda batch: open_batch(batch, False)))
    with sessions() as session:
        count = session.scalar(select(func.count()).select_from(Ticket))
    assert count == warm + 2 * size * args.batches, count  # nothing lost, nothing doubled
    print(f"\n{engine_for(url).dialect.name}, {args.batches} batches of {size} per row, "
          f"{args.rounds} rounds; {count} tickets in the end\n")
    print("| path | p50 ms/batch | p99 ms/batch | CPU ms/ticket |")
    print("|---|---:|---:|---:|")
    for label, p50, p99, cpu in rows:
        print(f"| {label} | {p50:.1f} | {p99:.1f} | {cpu:.3f} |")
    if profile:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(45)
        print(out.getvalue(), file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgresql", action="store_true", help="a throwaway PostgreSQL database")
    parser.add_argument("--batches", type=int, default=10, help="timed batches per row")
    parser.add_argument("--rounds", type=int, default=2, help="the rows are run this many times, interleaved")
    parser.add_argument("--batch", type=int, default=500, help="tickets per create_tickets call (intake's)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    if args.postgresql:
        with scratch_postgres_database("open_tickets_bench") as url:
            run(url, args)
    else:
        with tempfile.TemporaryDirectory(prefix="open-tickets-bench-") as folder:
            run(f"sqlite:///{folder}/tickets.db", args)


if __name__ == "__main__":
    main()
