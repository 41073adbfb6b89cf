"""Analytics: events ingested per second, dashboard report latency, and rebuild time, in process.

    .venv/bin/python bench/analytics.py [--tickets 20000] [--weeks 8] [--repeat 50] [--postgres]

A generated history (services/analytics/tests/analytics_history.py: about ten events per ticket) is applied
to a fresh analytics database in relay batches of 200 (``facts.ingest``, as the service's batched handlers
do, without the broker); then each dashboard report is run ``--repeat`` times (p50/p99 ms), against the
baseline of a plain ``GROUP BY`` over the ticket table for the same period, measured in the same run; then
the whole store is rebuilt from the tickets' export (``analytics-rebuild``'s loop, the export made in memory).
Broker delivery is not in these figures (see bench/broker_fanout.py for its cost per event).
"""
import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "services", "analytics", "tests"))

from analytics_history import CALENDARS, START, STATUSES, export_of, generate  # noqa: E402
from helpdesk_analytics import facts, rebuild, reports, settings as analytics_settings  # noqa: E402
from helpdesk_analytics.migrate import upgrade  # noqa: E402
from helpdesk_common.adapters.database import engine_for  # noqa: E402

ADMIN = {"actor": "bench", "role": "admin", "teams": []}
DASHBOARD = [("volume", "day"), ("backlog", "day"), ("first_response", "team"), ("resolution", "priority"),
             ("sla", "policy"), ("csat", "team")]
BATCH = 200


@contextlib.contextmanager
def database(kind, workdir):
    if kind == "sqlite":
        yield f"sqlite:///{workdir}/analytics-bench.db"
        return
    from helpdesk_common.testing import scratch_postgres_database
    with scratch_postgres_database("analytics_bench", fast=True) as url:
        yield url


def percentile(values, share):
    values = sorted(values)
    return values[min(len(values) - 1, int(share * len(values)))]


def run(kind, events, export, settings, repeat, weeks):
    with tempfile.TemporaryDirectory() as workdir, database(kind, workdir) as url:
        upgrade(url)
        sessions = sessionmaker(engine_for(url), expire_on_commit=False)
        started = time.perf_counter()
        for index in range(0, len(events), BATCH):
            with sessions.begin() as session:
                facts.ingest(session, events[index:index + BATCH], settings)
        ingest_seconds = time.perf_counter() - started
        end = START + timedelta(days=7 * weeks)
        week_start = end - timedelta(days=7)
        rows = []
        with sessions() as session:
            for measure, group in DASHBOARD:
                query = {"from": week_start.isoformat(), "to": end.isoformat(), "tz": "UTC", "group_by": group}
                times = []
                for _ in range(repeat):
                    began = time.perf_counter()
                    reports.run(session, measure, query, ADMIN, end)
                    times.append((time.perf_counter() - began) * 1000)
                rows.append((f"{measure} by {group}", statistics.median(times), percentile(times, 0.99)))
            plain = []
            for _ in range(repeat):
                began = time.perf_counter()
                session.execute(text("SELECT team, count(*) FROM ticket_facts WHERE created_at >= :a AND created_at < :b "
                                     "GROUP BY team"), {"a": week_start, "b": end}).all()
                plain.append((time.perf_counter() - began) * 1000)
        started = time.perf_counter()
        rebuilt = rebuild.rebuild(export, sessions, settings, page_size=500, report=lambda *a: None)
        rebuild_seconds = time.perf_counter() - started
        engine_for(url).dispose()
    return ingest_seconds, rows, (statistics.median(plain), percentile(plain, 0.99)), rebuild_seconds, rebuilt


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=20000)
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL (127.0.0.1:5432)")
    args = parser.parse_args()
    events = generate(tickets=args.tickets, weeks=args.weeks)
    export = export_of(events, page_size=500)
    settings = analytics_settings.from_dict(STATUSES, CALENDARS)
    print(f"history: {args.tickets:,} tickets, {len(events):,} events over {args.weeks} weeks; "
          f"load average {os.getloadavg()[0]:.1f}")
    for kind in ["sqlite"] + (["postgresql"] if args.postgres else []):
        ingest_seconds, rows, plain, rebuild_seconds, rebuilt = run(kind, events, export, settings, args.repeat,
                                                                    args.weeks)
        print(f"\n{kind}: ingested {len(events) / ingest_seconds:,.0f} events/s ({ingest_seconds:.1f} s, "
              f"batches of {BATCH}); rebuild of {rebuilt:,} tickets {rebuild_seconds:.1f} s "
              f"({rebuilt / rebuild_seconds:,.0f} tickets/s)")
        print(f"{'report (last 7 days)':<28}{'p50 ms':>10}{'p99 ms':>10}{'p50 / GROUP BY':>16}")
        for name, p50, p99 in rows:
            print(f"{name:<28}{p50:>10.1f}{p99:>10.1f}{p50 / plain[0]:>16.0f}")
        print(f"{'baseline: plain GROUP BY':<28}{plain[0]:>10.2f}{plain[1]:>10.2f}{1:>16}")


if __name__ == "__main__":
    main()
