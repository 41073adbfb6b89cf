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
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import timedelta

import requests
import yaml
from sqlalchemy import create_engine, literal_column, select, text
from sqlalchemy.orm import sessionmaker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(ROOT, "services", "analytics", "tests"))
sys.path.insert(0, ROOT)

from analytics_history import CALENDARS, START, STATUSES, export_of, generate  # noqa: E402
from helpdesk_analytics import facts, rebuild, reports, settings as analytics_settings  # noqa: E402
from helpdesk_analytics.migrate import upgrade  # noqa: E402
from helpdesk_analytics.models import SurveyAnswer, TicketActivity, TicketFact  # noqa: E402
from helpdesk_common.adapters.database import engine_for  # noqa: E402
from helpdesk_common.adapters.exchanges import event_exchanges  # noqa: E402
from helpdesk_common.adapters.relay import ConfirmedPublisher  # noqa: E402
from helpdesk_common.database import UtcDateTime  # noqa: E402
from procstat import broker_cpu, processes  # noqa: E402
from tests.stack import RABBIT_API, Vhost  # noqa: E402

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


def relay_batches(events, size=BATCH):
    """The history as the services' outbox relays publish it: each ``size`` events in order, per source."""
    batches = []
    for index in range(0, len(events), size):
        by_source = {}
        for event in events[index:index + size]:
            by_source.setdefault(event["source"], []).append(event)
        batches.extend(by_source.items())
    return batches


def cpu_of(pid):
    return next((cpu for found, _name, _session, cpu in processes() if found == pid), 0.0)


def consumers_ready(vhost, handlers):
    """True once every one of the service's ``handlers`` queues has its consumer."""
    parts = urllib.parse.urlsplit(RABBIT_API)
    try:
        answer = requests.get(f"{vhost.api}/queues/{vhost.quoted}", auth=(parts.username, parts.password), timeout=30)
    except requests.RequestException:  # a busy broker's management API: ask again
        return False
    ready = [q for q in answer.json() if "--analytics." in q["name"] and ".retry-" not in q["name"]
             and q.get("consumers", 0) > 0]
    return len(ready) >= handlers


def through_broker(kind, events, args):
    """The analytics service as ``make run`` starts it, fed the history through the broker by relay batches:
    events/s from the first publish until every event is in the read model (and every new ticket in the
    surge detector's table), with the service's, the broker's and this publishing process's CPU."""
    wanted = sum(1 for e in events if e["type"] in facts.SUBSCRIBED)
    created = sum(1 for e in events if e["type"] == "ticket_created")
    handlers = len({e["type"] for e in events if e["type"] in facts.SUBSCRIBED}) + 1  # + record_arrivals
    batches = relay_batches(events)
    with tempfile.TemporaryDirectory() as workdir, database(kind, workdir) as url:
        upgrade(url)
        sla_file = os.path.join(workdir, "sla.yaml")
        with open(sla_file, "w") as stream:
            yaml.safe_dump(CALENDARS, stream)
        vhost = Vhost(f"bench-analytics-{os.getpid()}")
        for attempt in range(5):  # a busy broker's management API answers slowly
            try:
                vhost.create()
                break
            except requests.RequestException:
                if attempt == 4:
                    raise
                time.sleep(5)
        env = {**os.environ, "HELPDESK_AMQP_URI": vhost.amqp_uri, "HELPDESK_ANALYTICS_DB_URL": url,
               "HELPDESK_SLA_FILE": sla_file, "PYTHONWARNINGS": "ignore", **dict(args.env)}
        log = open(os.path.join(workdir, "analytics.log"), "wb")
        argv = ([os.path.join(BIN, "python"), args.profile_runner] if args.profile_runner else
                [os.path.join(BIN, "nameko"), "run", "helpdesk_analytics.service", "--config",
                 "services/analytics/config.yaml"])
        service = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        reader = create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))  # no BEGIN IMMEDIATE
        try:
            deadline = time.monotonic() + 60
            while not consumers_ready(vhost, handlers):
                if service.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the analytics service did not start:\n{open(log.name).read()[-3000:]}")
                time.sleep(0.2)
            publishers = {}
            load, service_cpu, broker, own = os.getloadavg()[0], cpu_of(service.pid), broker_cpu(), time.process_time()
            started = time.perf_counter()
            for source, envelopes in batches:
                if source not in publishers:
                    exchange, batch_exchange = event_exchanges(source)
                    publishers[source] = ConfirmedPublisher(vhost.amqp_uri, exchange, batch_exchange=batch_exchange)
                publishers[source].publish_batch(envelopes)
            published = time.perf_counter() - started
            own = time.process_time() - own
            deadline = time.monotonic() + args.broker_timeout
            while True:
                with reader.connect() as connection:
                    done = connection.scalar(text("SELECT count(*) FROM processed_events WHERE handler = :h"),
                                             {"h": facts.HANDLER})
                    arrived = connection.scalar(text("SELECT count(*) FROM surge_tickets"))
                if done >= wanted and arrived >= created:
                    break
                if time.monotonic() > deadline or service.poll() is not None:
                    raise SystemExit(f"{done:,} of {wanted:,} events in after {args.broker_timeout} s:\n"
                                     f"{open(log.name).read()[-3000:]}")
                time.sleep(0.05)
            seconds = time.perf_counter() - started
            service_cpu, broker = cpu_of(service.pid) - service_cpu, broker_cpu() - broker
            print(f"\n{kind}, through the broker ({os.environ.get('HELPDESK_QUEUE_TYPE', 'quorum')} queues; "
                  f"{len(batches):,} relay batches, {wanted:,} events analytics reads):")
            print(f"  {wanted / seconds:,.0f} events/s by the wall clock ({seconds:.1f} s; all published after "
                  f"{published:.1f} s); {wanted / service_cpu:,.0f} by the service's CPU ({service_cpu:.1f} s); "
                  f"broker {broker / wanted * 1e3:.3f} ms CPU per event, publisher {own / wanted * 1e3:.3f}; "
                  f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
            for publisher in publishers.values():
                publisher.close()
        finally:
            if service.poll() is None:
                os.killpg(service.pid, signal.SIGTERM)
                try:
                    service.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(service.pid, signal.SIGKILL)
            reader.dispose()
            vhost.delete()


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
    parser.add_argument("--broker", choices=("yes", "no", "only"), default="yes",
                        help="also (or only) ingest through RabbitMQ into the service running as a process")
    parser.add_argument("--broker-timeout", type=float, default=600)
    parser.add_argument("--profile-runner", help=argparse.SUPPRESS)
    parser.add_argument("--env", action="append", default=[], type=lambda text: tuple(text.split("=", 1)),
                        help="NAME=VALUE for the service process (e.g. HELPDESK_ANALYTICS_MAX_WORKERS=40)")
    args = parser.parse_args()
    events = generate(tickets=args.tickets, weeks=args.weeks)
    export = export_of(events, page_size=500)
    settings = analytics_settings.from_dict(STATUSES, CALENDARS)
    print(f"history: {args.tickets:,} tickets, {len(events):,} events over {args.weeks} weeks; "
          f"load average {os.getloadavg()[0]:.1f}")
    kinds = ([] if args.no_postgres_sqlite else ["sqlite"]) + (["postgresql"] if args.postgres else [])
    for kind in kinds:
        if args.broker != "no":
            through_broker(kind, events, args)
        if args.broker != "only":
            run(kind, events, export, settings, args)


if __name__ == "__main__":
    main()
