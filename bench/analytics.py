"""Analytics: events ingested per second, dashboard report latency over a growing history, and rebuild time,
in process.

    .venv/bin/python bench/analytics.py [--tickets 20000] [--weeks 2] [--sizes 1,5,50] [--repeat 50] [--postgres]

A generated history (services/analytics/tests/analytics_history.py: about eight events per ticket, ``--tickets``
over ``--weeks``) is applied to a fresh analytics database in relay batches of 200 (``facts.ingest``, as the
service's batched handlers do, without the broker): events/s by the wall clock, and by this process's CPU
(on SQLite the database works inside the process; the machine is shared, so the CPU figure says what the
code costs when it is not kept waiting).

The history then grows to each of ``--sizes`` times itself: older copies of the store (every moment moved
back by the history's length, tickets renamed) are added under it in SQL, so the same last 7 days stand on
10, 100 or 1,000 times the history, at the same tickets per week. At each size the dashboard's reports run
``--repeat`` times over the last 7 days (p50/p99 ms, and this process's CPU per report: on PostgreSQL
without the server's part) against the baseline of a plain ``GROUP BY`` over the
ticket table for the same period, measured in the same run. Last, the whole store is rebuilt from the tickets'
export (``analytics-rebuild``'s loop, the export made in memory; over the original history's tickets).
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

from sqlalchemy import literal_column, select, text
from sqlalchemy.orm import sessionmaker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "services", "analytics", "tests"))

from analytics_history import CALENDARS, START, STATUSES, export_of, generate  # noqa: E402
from helpdesk_analytics import facts, rebuild, reports, settings as analytics_settings  # noqa: E402
from helpdesk_analytics.migrate import upgrade  # noqa: E402
from helpdesk_analytics.models import SurveyAnswer, TicketActivity, TicketFact  # noqa: E402
from helpdesk_common.adapters.database import engine_for  # noqa: E402
from helpdesk_common.database import UtcDateTime  # noqa: E402

ADMIN = {"actor": "bench", "role": "admin", "teams": []}
DASHBOARD = [("volume", "day"), ("backlog", "day"), ("first_response", "team"), ("resolution", "priority"),
             ("sla", "policy"), ("csat", "team")]
BATCH = 200
# what an older copy of the store renames, so that its rows are other tickets' and other surveys'
RENAMED = {TicketFact: ("number",), TicketActivity: ("ticket",), SurveyAnswer: ("survey_id", "ticket")}
TOTALS = """
INSERT INTO backlog_totals (status_category, team, agent, channel, priority, category, language, policy, tickets)
SELECT settled_category, COALESCE(team, ''), COALESCE(agent, ''), COALESCE(channel, ''), COALESCE(priority, ''),
       COALESCE(category, ''), COALESCE(language, ''), COALESCE(sla_policy, ''), count(*)
FROM ticket_facts WHERE settled_category IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"""


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


def shifted(kind, column, days):
    """``column`` moved ``days`` back, in the store's own format (SQLite keeps text with microseconds)."""
    if kind == "postgresql":
        return literal_column(f"{column} - interval '{days} days'")
    return literal_column(f"strftime('%Y-%m-%d %H:%M:%S', {column}, '-{days} days') || substr({column}, 20)")


def add_older_copies(session, kind, first, last, days):
    """Copies ``first`` .. ``last - 1`` of the original store, copy k moved k * ``days`` back."""
    for copy in range(first, last):
        for model, renamed in RENAMED.items():
            table = model.__table__
            columns = [shifted(kind, c.name, copy * days) if isinstance(c.type, UtcDateTime)
                       else (literal_column(f"{c.name} || '-c{copy}'") if c.name in renamed else c)
                       for c in table.c]
            original = table.c[renamed[0]].not_like("%-c%")
            session.execute(table.insert().from_select([c.name for c in table.c],
                                                       select(*columns).where(original)))
    session.execute(text("DELETE FROM backlog_totals"))
    session.execute(text(TOTALS))


def measure_reports(sessions, end, repeat):
    week_start = end - timedelta(days=7)
    rows = []
    with sessions() as session:
        for measure, group in DASHBOARD:
            query = {"from": week_start.isoformat(), "to": end.isoformat(), "tz": "UTC", "group_by": group}
            times, cpu = [], []
            for _ in range(repeat):
                began, used = time.perf_counter(), time.process_time()
                reports.run(session, measure, query, ADMIN, end)
                times.append((time.perf_counter() - began) * 1000)
                cpu.append((time.process_time() - used) * 1000)
            rows.append((f"{measure} by {group}", statistics.median(times), percentile(times, 0.99),
                         statistics.median(cpu)))
        plain = []
        for _ in range(repeat):
            began = time.perf_counter()
            session.execute(text("SELECT team, count(*) FROM ticket_facts WHERE created_at >= :a AND created_at < :b "
                                 "GROUP BY team"), {"a": week_start, "b": end}).all()
            plain.append((time.perf_counter() - began) * 1000)
        tickets = session.scalar(text("SELECT count(*) FROM ticket_facts"))
    return tickets, rows, (statistics.median(plain), percentile(plain, 0.99))


def run(kind, events, export, settings, args):
    with tempfile.TemporaryDirectory() as workdir, database(kind, workdir) as url:
        upgrade(url)
        sessions = sessionmaker(engine_for(url), expire_on_commit=False)
        started, cpu = time.perf_counter(), time.process_time()
        for index in range(0, len(events), BATCH):
            with sessions.begin() as session:
                facts.ingest(session, events[index:index + BATCH], settings)
        ingest = (time.perf_counter() - started, time.process_time() - cpu)
        print(f"\n{kind}: ingested {len(events) / ingest[0]:,.0f} events/s by the wall clock, "
              f"{len(events) / ingest[1]:,.0f} by this process's CPU ({ingest[0]:.1f} s, batches of {BATCH}; "
              f"load average {os.getloadavg()[0]:.1f})")
        end = START + timedelta(days=7 * args.weeks)
        copies = 1
        print(f"{'tickets':>10}  {'report (last 7 days)':<26}{'p50 ms':>9}{'p99 ms':>9}{'p50 / GROUP BY':>16}"
              f"{'CPU p50 ms':>12}")
        for size in args.sizes:
            if size > copies:
                began = time.perf_counter()
                with sessions.begin() as session:
                    add_older_copies(session, kind, copies, size, 7 * args.weeks)
                copies = size
                print(f"  (grown to {size} copies in {time.perf_counter() - began:.0f} s; "
                      f"load average {os.getloadavg()[0]:.1f})")
            tickets, rows, plain = measure_reports(sessions, end, args.repeat)
            for name, p50, p99, cpu in rows:
                print(f"{tickets:>10,}  {name:<26}{p50:>9.1f}{p99:>9.1f}{p50 / plain[0]:>16.0f}{cpu:>12.1f}")
            print(f"{tickets:>10,}  {'baseline: plain GROUP BY':<26}{plain[0]:>9.2f}{plain[1]:>9.2f}{1:>16}")
        if not args.no_rebuild:
            with sessions.begin() as session:  # the original history's tickets, in a store of their own size
                for table in ("ticket_activities", "ticket_facts", "backlog_totals"):
                    session.execute(text(f"DELETE FROM {table}"))
            started = time.perf_counter()
            rebuilt = rebuild.rebuild(export, sessions, settings, page_size=500, report=lambda *a: None)
            seconds = time.perf_counter() - started
            print(f"rebuild of {rebuilt:,} tickets from the export: {seconds:.1f} s ({rebuilt / seconds:,.0f} "
                  f"tickets/s; 1,000,000 tickets at that rate: {1e6 / (rebuilt / seconds) / 60:.0f} min)")
        engine_for(url).dispose()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=20000)
    parser.add_argument("--weeks", type=int, default=2)
    parser.add_argument("--sizes", type=lambda text: [int(n) for n in text.split(",")], default=[1, 5, 50],
                        help="the history grown to these multiples of itself, in order (1,5,50: 20k, 100k, 1M)")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL (127.0.0.1:5432)")
    parser.add_argument("--no-postgres-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--no-rebuild", action="store_true")
    args = parser.parse_args()
    events = generate(tickets=args.tickets, weeks=args.weeks)
    export = export_of(events, page_size=500)
    settings = analytics_settings.from_dict(STATUSES, CALENDARS)
    print(f"history: {args.tickets:,} tickets, {len(events):,} events over {args.weeks} weeks; "
          f"load average {os.getloadavg()[0]:.1f}")
    kinds = ([] if args.no_postgres_sqlite else ["sqlite"]) + (["postgresql"] if args.postgres else [])
    for kind in kinds:
        run(kind, events, export, settings, args)


if __name__ == "__main__":
    main()
