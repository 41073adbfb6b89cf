"""Email intake: messages ingested per second from IMAP, and the delay from delivery to the ticket.

Starts a real Dovecot (IMAP) and aiosmtpd (SMTP) on loopback (the intake tests' own servers,
``services/intake/tests/servers.py``) and the platform as processes (``tests/stack.py``) with intake
reading that mailbox, then measures, in one run:

* **backlog**: ``--messages`` mails are written into the stopped intake's Maildir, then intake is started;
  two rates, both from the moment intake answered its first ``/health`` ping: **ingested**, messages ÷
  (the last mail recorded done by intake, read from intake's own record after the run: its ticket was
  committed before, so it exists), and **events out**, messages ÷ (the last ``ticket_created`` heard by a
  subscriber: the tickets exist *and* the platform has told everyone, the later and stricter of the two);
  and, less flattering, events out from the moment the intake process was spawned. ``--services`` leaves
  some reacting services out (``--services intake``: intake and tickets alone, the ingest path);
* **baseline**, in the same run on the same filled mailbox before intake reads it: the raw rate of
  fetching the same messages with ``imaplib`` alone (LOGIN, SELECT, UID SEARCH UNSEEN, UID FETCH
  BODY.PEEK[] in batches of ``IMAP_BATCH_SIZE``), the ceiling intake's IMAP side cannot beat;
* **delay**: with intake running, ``--live`` mails are delivered one by one at ``--rate`` per second; the
  delay of each is from its rename into ``Maildir/new`` to intake recording it done (its ticket exists),
  and to its ``ticket_created`` event arriving (the event leaves after the ticket's commit). Four
  times, ``--live`` new mails each: with IMAP IDLE (the default: the watcher wakes the poll) and the poll
  every ``--poll-interval`` s; intake restarted with IDLE and the poll every ``--idle-poll-interval`` s (5,
  the default: what IDLE alone gives); and the **baselines** in the same run, intake restarted with
  ``HELPDESK_IMAP_IDLE=false``, the poll alone every ``--poll-interval`` s, then every
  ``--idle-poll-interval`` s; with the CPU per mail of each (idle platform to idle platform);

* **CPU time per message**, per part of the platform (each service, the gateway, Dovecot, the broker and,
  with ``--db postgres``, this run's PostgreSQL connections), read from ``/proc``: from intake answering
  to the last ``ticket_created``, and until every acknowledgement is sent and the platform is idle again
  (routing, suggestions, acknowledgements and their events are work the mail causes too). Every service
  runs, as in ``make run``.

Each message is a new ticket (distinct subjects and Message-IDs, 200 distinct senders): 85 % plain text
(base64), 10 % HTML only, 5 % with a small PDF attachment. Every ticket is checked to appear exactly once.
``ticket_created`` events are heard by ``tests.stack.EventRecorder``. Prints Markdown tables.

    .venv/bin/python bench/intake_throughput.py [--messages 1000] [--batch 200] [--live 300] [--rate 50]
        [--poll-interval 0.5] [--idle-poll-interval 5] [--db sqlite|postgres] [--services intake,routing,kb_search]

``--live 0`` measures the backlog alone.
"""
import argparse
import glob
import imaplib
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings

warnings.simplefilter("ignore")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "services", "intake", "tests"))

import requests  # noqa: E402

import mails  # noqa: E402
from procstat import processes  # noqa: E402
from servers import PASSWORD, Dovecot, SmtpSink  # noqa: E402
from sqlalchemy import select  # noqa: E402

from helpdesk_common.adapters.database import engine_for  # noqa: E402
from helpdesk_intake.models import InboundMessage  # noqa: E402
from tests.stack import SERVICES, EventRecorder, Stack, database_url, wait_for  # noqa: E402

PDF = b"%PDF-1.4\n" + b"0" * 2000


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def message(prefix, i):
    """(subject, raw bytes) of the i-th message: a new ticket each."""
    subject = f"{prefix} {i:05d} printer prints blank pages"
    sender = f"Customer {i % 200} <customer{i % 200}@example.com>"
    if i % 20 == 19:
        return subject, mails.with_attachment(sender, subject, f"See the attached scan ({i}).",
                                              f"<p>See the attached scan ({i}).</p>", "scan.pdf", PDF)
    if i % 10 == 9:
        return subject, mails.html_only(sender, subject, f"<p>The printer on <b>floor {i % 7}</b> prints blank "
                                                         f"pages.</p><p>Request {i}.</p>")
    return subject, mails.plain(sender, subject, f"Hello,\n\nThe printer on floor {i % 7} prints blank pages "
                                                 f"since this morning (request {i}).\n\nRegards,\nCustomer\n")


class Arrivals:
    """``ticket_created`` arrivals by subject, read from the platform's :class:`tests.stack.EventRecorder`
    (bound to ``tickets.events``, ``ticket_created`` only, before anything is delivered). Indexed as they
    come, so that polling it costs the machine little while it measures."""

    def __init__(self, amqp_uri):
        self.recorder = EventRecorder(amqp_uri, source="tickets", routing_key="ticket_created", batches=True)
        self._seen, self._indexed = {}, 0

    def __enter__(self):
        self.recorder.__enter__()
        return self

    def __exit__(self, *exc):
        self.recorder.__exit__(*exc)

    def seen(self):
        """subject -> [arrival times] of every ``ticket_created`` so far."""
        recorder = self.recorder
        assert recorder.error is None, f"the event listener died: {recorder.error!r}"
        arrived = min(len(recorder.events), len(recorder.arrived))  # the listener appends to both in turn
        for event, at in zip(recorder.events[self._indexed:arrived], recorder.arrived[self._indexed:arrived]):
            self._seen.setdefault(event["data"]["ticket"]["subject"], []).append(at)
        self._indexed = arrived
        return self._seen

    def count(self, subjects):
        seen = self.seen()
        return sum(1 for s in subjects if s in seen)

    def first(self, subject):
        return self.seen()[subject][0]

    def duplicates(self):
        return sum(len(times) - 1 for times in self.seen().values())



def cpu_seconds(stack, dovecot, databases=()):
    """CPU seconds used so far by each part, read from ``/proc``: every process started by the stack (and
    Dovecot) runs in a session of its own, so a part is its session (workers and children included). The
    broker is the machine's RabbitMQ, shared with anything else running on it. ``databases``: the names of
    this run's PostgreSQL databases, whose server processes (one per connection, named after the database)
    make the ``postgresql`` part; a connection closed during the run takes its CPU time with it."""
    sessions = {dovecot.process.pid: "dovecot (IMAP)", stack.gateway.pid: "gateway",
                **{p.pid: "tickets" for p in stack.tickets},
                **{p.pid: name for name, p in stack.services.items()}}
    parts = dict.fromkeys([*dict.fromkeys(sessions.values()), "broker"] + (["postgresql"] if databases else []), 0.0)
    for pid, name, session, cpu in processes():
        part = sessions.get(session)
        if part is None and name == "beam.smp":
            part = "broker"
        if part is None and databases and name == "postgres":
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as stream:
                    title = stream.read().decode(errors="replace")
            except OSError:  # ended meanwhile
                continue
            if any(f" {database} " in title for database in databases):
                part = "postgresql"
        if part is not None:
            parts[part] += cpu
    return parts


def idle_cpu(stack, dovecot, databases=(), window=0.5, threshold=0.1, timeout=120):
    """``cpu_seconds`` once the platform's processes have gone idle (under ``threshold`` of a core for
    ``window`` s; the broker is not watched, it may be serving others)."""
    deadline = time.time() + timeout
    before = cpu_seconds(stack, dovecot, databases)
    while True:
        time.sleep(window)  # sampling the CPU counters, not waiting for a result
        after = cpu_seconds(stack, dovecot, databases)
        busy = sum(after[p] - before[p] for p in after if p != "broker")  # the broker may serve others too
        if busy < threshold * window or time.time() > deadline:
            return after
        before = after


def imaplib_fetch(mailbox, batch):
    """The baseline: fetch every unseen message with imaplib alone, the way intake does (PEEK: none is marked)."""
    started = time.perf_counter()
    connection = imaplib.IMAP4("127.0.0.1", mailbox.server.port)
    connection.login(mailbox.user, PASSWORD)
    connection.select("INBOX")
    uids = sorted(int(u) for u in connection.uid("SEARCH", None, "UNSEEN")[1][0].split())
    fetched, size = 0, 0
    for start in range(0, len(uids), batch):
        chunk = ",".join(map(str, uids[start:start + batch]))
        status, data = connection.uid("FETCH", chunk, "(UID BODY.PEEK[])")
        assert status == "OK", data
        for entry in data:
            if isinstance(entry, tuple):
                fetched += 1
                size += len(entry[1])
    connection.logout()
    elapsed = time.perf_counter() - started
    return fetched, elapsed, size


def live_delays(stack, dovecot, databases, mailbox, arrivals, prefix, args):
    """Deliver ``args.live`` mails one by one at ``args.rate`` per second into the running intake: (delivery
    time by subject, delays in s from delivery to ``ticket_created``, CPU ms per mail by part between idle
    platforms)."""
    before = idle_cpu(stack, dovecot, databases)
    live = [message(prefix, i) for i in range(args.live)]
    delivered = {}
    started = time.time()
    for n, (subject, raw) in enumerate(live):
        due = started + n / args.rate
        pause = due - time.time()
        if pause > 0:
            time.sleep(pause)  # pacing the deliveries, not waiting for a result
        mailbox.deliver(raw)
        delivered[subject] = time.time()
    subjects = list(delivered)
    wait_for(lambda: arrivals.count(subjects) == len(subjects), timeout=300, interval=0.05,
             what=f"{len(subjects)} {prefix} tickets")
    after = idle_cpu(stack, dovecot, databases)
    cpu = {part: (after[part] - before.get(part, 0.0)) * 1000 / args.live for part in after}
    return delivered, [arrivals.first(s) - delivered[s] for s in subjects], cpu


def recorded_at(intake_db_url, prefix):
    """subject -> when intake recorded the mail done (epoch seconds), for the mails whose subject starts with
    ``prefix``: read from intake's own record after the run, so that watching costs the platform nothing. A
    mail is recorded done after the tickets service answered for its ticket (committed: it exists) and
    before the mail is marked processed on the IMAP server; this is the moment it is ingested."""
    engine = engine_for(intake_db_url)
    with engine.connect() as connection:
        rows = connection.execute(select(InboundMessage.subject, InboundMessage.done_at)
                                  .where(InboundMessage.subject.startswith(prefix), InboundMessage.state == "done"))
        return {subject: done_at.timestamp() for subject, done_at in rows}


def intake_healthy(stack):
    try:
        answer = requests.get(f"{stack.url}/health", timeout=2)
        return answer.status_code == 200
    except requests.RequestException:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000, help="messages in the backlog")
    parser.add_argument("--live", type=int, default=300, help="messages delivered one by one for the delay")
    parser.add_argument("--rate", type=float, default=50, help="deliveries per second of the delay phase")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="HELPDESK_IMAP_POLL_INTERVAL")
    parser.add_argument("--idle-poll-interval", type=float, default=5,
                        help="HELPDESK_IMAP_POLL_INTERVAL of the second IDLE delay phase (the default interval)")
    parser.add_argument("--batch", type=int, default=200, help="HELPDESK_IMAP_BATCH_SIZE")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--services", default=",".join(SERVICES),
                        help="the services besides tickets (all by default, as make run; intake is needed)")
    args = parser.parse_args()

    dovecot_root = tempfile.mkdtemp(prefix="bench-dovecot-")  # not a private temp folder: Dovecot's user enters it
    workdir = tempfile.mkdtemp(prefix="helpdesk-bench-intake-")
    dovecot = Dovecot(dovecot_root).start()
    sink = SmtpSink(os.path.join(workdir, "smtp")).start()
    mailbox = dovecot.mailbox()
    db_url, drop, intake_db_url, drop_intake = None, None, None, None
    if args.db == "postgres":  # tickets' and intake's databases (routing and kb_search stay on SQLite)
        db_url, drop = database_url("postgres")
        intake_db_url, drop_intake = database_url("postgres")
    databases = [url.rsplit("/", 1)[1] for url in (db_url, intake_db_url) if url]
    stack = Stack(workdir, tickets_db_url=db_url, env={
        "HELPDESK_IMAP_URL": mailbox.url(team="support"), "HELPDESK_SMTP_URL": sink.url,
        "HELPDESK_SUPPORT_ADDRESS": "support@helpdesk.test", "HELPDESK_IMAP_POLL_INTERVAL": str(args.poll_interval),
        "HELPDESK_IMAP_BATCH_SIZE": str(args.batch), "HELPDESK_MAIL_POLL_INTERVAL": "1",
        "HELPDESK_IMAP_IDLE": "true",
        # /health times the moment intake answers: its checks uncached, as before the cache was added
        "HELPDESK_HEALTH_CACHE_SECONDS": "0"}, services=args.services.split(","))
    if intake_db_url:
        stack.service_db_urls["intake"] = intake_db_url
    try:
        stack.start()
        with Arrivals(stack.amqp_uri) as arrivals:
            # --- backlog: fill the Maildir of the stopped intake, measure the baseline, start intake ----
            stack.stop_process(stack.services["intake"])
            backlog = [message("backlog", i) for i in range(args.messages)]
            for _, raw in backlog:
                mailbox.deliver(raw)
            assert mailbox.counts() == (args.messages, args.messages)
            fetched, fetch_seconds, size = imaplib_fetch(mailbox, args.batch)
            assert fetched == args.messages, fetched
            assert mailbox.counts() == (args.messages, args.messages)  # PEEK: still unseen for intake

            subjects = [s for s, _ in backlog]
            spawned = time.time()
            stack.start_service("intake")
            wait_for(lambda: intake_healthy(stack), timeout=60, interval=0.01, what="intake to answer")
            ready = time.time()
            cpu_ready = cpu_seconds(stack, dovecot, databases)
            wait_for(lambda: arrivals.count(subjects) == len(subjects), timeout=600, interval=0.05,
                     what=f"{len(subjects)} tickets")
            cpu_done = cpu_seconds(stack, dovecot, databases)
            acks_meanwhile = len(glob.glob(os.path.join(sink.folder, "*.json")))
            # Everything the backlog causes besides its tickets (acknowledgements over SMTP, routing and
            # suggestions, events) goes on after the last ticket_created: wait for the acknowledgements, then
            # until the platform is idle (under a tenth of a core for half a second).
            wait_for(lambda: len(glob.glob(os.path.join(sink.folder, "*.json"))) >= args.messages, timeout=300,
                     what="every acknowledgement sent")
            cpu_settled = idle_cpu(stack, dovecot, databases)
            last = max(arrivals.first(s) for s in subjects)
            first = min(arrivals.first(s) for s in subjects)
            settled_after = time.time() - last
            wait_for(lambda: mailbox.counts()[1] == 0, timeout=120, what="every message marked seen")

            # --- delay: deliver one by one at --rate into the running intake, woken by IMAP IDLE, then
            # into intake restarted with IDLE and the default poll interval (what IDLE alone gives), then
            # the baselines: intake restarted without IDLE, polling at each of the two intervals ----------
            phases = [(f"IMAP IDLE, poll every {args.poll_interval}s", "live", None),
                      (f"IMAP IDLE, poll every {args.idle_poll_interval}s", "idle",
                       {"HELPDESK_IMAP_POLL_INTERVAL": str(args.idle_poll_interval)}),
                      (f"poll every {args.poll_interval}s alone (baseline)", "polled", {"HELPDESK_IMAP_IDLE": "false"}),
                      (f"poll every {args.idle_poll_interval}s alone (baseline)", "slow",
                       {"HELPDESK_IMAP_IDLE": "false",
                        "HELPDESK_IMAP_POLL_INTERVAL": str(args.idle_poll_interval)})]
            delays, live_subjects = [], []
            for label, prefix, restart in (phases if args.live else []):  # --live 0: the backlog alone
                if restart is not None:
                    stack.stop_process(stack.services["intake"])
                    stack.start_service("intake", **restart)
                    wait_for(lambda: intake_healthy(stack), timeout=60, interval=0.01, what="intake to answer")
                delivered, phase_delays, phase_cpu = live_delays(stack, dovecot, databases, mailbox, arrivals,
                                                                 prefix, args)
                live_subjects += list(delivered)
                delays.append((label, prefix, delivered, phase_delays, phase_cpu))
                wait_for(lambda: mailbox.counts() == (args.messages + len(live_subjects), 0), timeout=120,
                         what="every live message marked seen")
            made = arrivals.count(subjects) + arrivals.count(live_subjects)
            recorded = recorded_at(stack.service_db_urls["intake"], "backlog ")
            assert sorted(recorded) == sorted(subjects), "a backlog mail was not recorded done by intake"
            to_record = {}  # phase -> delays in s from delivery to intake recording the mail done
            for _label, prefix, delivered, _delays, _cpu in delays:
                done = recorded_at(stack.service_db_urls["intake"], prefix + " ")
                to_record[prefix] = [done[subject] - at for subject, at in delivered.items()]
            duplicates = arrivals.duplicates()
    finally:
        stack.stop()
        sink.stop()
        dovecot.stop()
        shutil.rmtree(dovecot_root, ignore_errors=True)
        if drop:
            drop()
        if drop_intake:
            drop_intake()

    ingested = max(recorded.values())
    rate_ingested = args.messages / (ingested - ready)
    rate_ready = args.messages / (last - ready)
    rate_spawn = args.messages / (last - spawned)
    baseline = fetched / fetch_seconds
    print(f"\nEmail intake from IMAP (Dovecot on loopback; {args.messages} messages in the backlog, "
          f"avg {size / fetched / 1024:.1f} KiB; database: {args.db}; {os.cpu_count()} cores; "
          f"load average at the end {os.getloadavg()[0]:.1f}; "
          f"IMAP batch {args.batch}; poll interval {args.poll_interval}s)\n")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| ingested: backlog → every mail recorded done by intake (its ticket committed), msgs/s | "
          f"{rate_ingested:.0f} |")
    print(f"| events out: backlog → every ticket_created heard by a subscriber, msgs/s | {rate_ready:.0f} |")
    print(f"| events out from the intake process's spawn, msgs/s | {rate_spawn:.0f} |")
    print(f"| first / last backlog mail recorded done, s after intake answering | "
          f"{min(recorded.values()) - ready:.2f} / {ingested - ready:.2f} |")
    print(f"| first / last backlog ticket_created, s after intake answering | {first - ready:.2f} / "
          f"{last - ready:.2f} |")
    print(f"| baseline: imaplib fetch alone, msgs/s | {baseline:.0f} |")
    print(f"| ingested ÷ baseline; events out ÷ baseline | {rate_ingested / baseline:.3f}; "
          f"{rate_ready / baseline:.3f} |")
    print(f"| acknowledgements sent by the last ticket_created | {acks_meanwhile} of {args.messages} |")
    print(f"| tickets made / messages (duplicate ticket_created events) | "
          f"{made}/{args.messages + len(live_subjects)} ({duplicates}) |")
    if delays:  # not with --live 0
        print(f"\nDelay from delivery (the rename into Maildir/new) to the mail recorded done (its ticket exists) "
              f"and to ticket_created heard, {args.live} mails at "
              f"{args.rate:g}/s into the running intake, four times: with IMAP IDLE (the default) and the poll "
              f"every {args.poll_interval}s; restarted with IDLE and the poll every {args.idle_poll_interval}s (the "
              f"default interval: the poll rarely fires); restarted with HELPDESK_IMAP_IDLE=false, the poll alone "
              f"every {args.poll_interval}s and every {args.idle_poll_interval}s (the baselines). CPU per mail from /proc, from an idle platform to an idle "
              f"platform again (tickets, acknowledgements, events included).\n")
        print("| intake | recorded p50 ms | recorded p99 ms | ticket_created p50 ms | ticket_created p99 ms | "
              "mean / max ms | CPU ms/mail: intake | dovecot | all but the broker |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for label, prefix, _delivered, phase_delays, cpu in delays:
            print(f"| {label} | {percentile(to_record[prefix], 0.5) * 1000:.0f} | "
                  f"{percentile(to_record[prefix], 0.99) * 1000:.0f} | "
                  f"{percentile(phase_delays, 0.5) * 1000:.0f} | {percentile(phase_delays, 0.99) * 1000:.0f} | "
                  f"{statistics.mean(phase_delays) * 1000:.0f} / {max(phase_delays) * 1000:.0f} | {cpu['intake']:.2f} | "
                  f"{cpu['dovecot (IMAP)']:.2f} | {sum(ms for part, ms in cpu.items() if part != 'broker'):.2f} |")
    print(f"\nCPU time per backlog message (ms), from /proc between intake answering and the last ticket_created "
          f"({last - ready:.2f} s; the 2 cores give {2000 * (last - ready) / args.messages:.2f} ms per message). "
          f"Services besides tickets: {args.services} (all of them is `make run`: routing and kb_search consume "
          f"ticket_created too). "
          f"The broker is the machine's RabbitMQ, shared with anything else running on it; the SMTP sink (a "
          f"stand-in for the organisation's mail server) is left out.\n")
    cpu = {part: (cpu_done[part] - cpu_ready.get(part, 0.0)) * 1000 / args.messages for part in cpu_done}
    settled = {part: (cpu_settled[part] - cpu_ready.get(part, 0.0)) * 1000 / args.messages for part in cpu_done}
    print("| window | " + " | ".join(cpu) + " | total |")
    print("|---|" + "---:|" * (len(cpu) + 1))
    print("| until the last ticket_created | " + " | ".join(f"{ms:.2f}" for ms in cpu.values())
          + f" | {sum(cpu.values()):.2f} |")
    print(f"| until every acknowledgement is sent and the platform idle (+{settled_after:.1f} s) | "
          + " | ".join(f"{ms:.2f}" for ms in settled.values()) + f" | {sum(settled.values()):.2f} |")


if __name__ == "__main__":
    main()
