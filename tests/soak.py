"""The soak: the whole platform under a steady load of API tickets and mail while every part of it fails once.

Shared by ``bench/soak.py`` (10,000 tickets and 2,000 mails) and ``tests/test_soak.py`` (a few hundred and a
few dozen, every fault still applied). What it starts, all of its own:

- a RabbitMQ node (:mod:`rabbit_cluster`, on its own ports; quorum queues, as production declares them) and a
  PostgreSQL server (:mod:`postgres_server`, on a free port) holding all seven databases. The machine's shared
  broker (5672) and server (5432) are never touched: the soak restarts its own.
- Dovecot with a mailbox that intake reads over IMAP, and an SMTP sink for what intake sends (:mod:`mail_servers`);
- every service and the gateway as processes (:class:`stack.Stack`).

The load: ``clients`` threads POST tickets through the REST API, each with an ``Idempotency-Key`` and the same
body on every attempt, retrying on connection errors, time-outs and 5xx answers as a well-behaved client does;
a mail thread delivers mails into the Maildir (as a delivery agent does) in step with the tickets. The faults,
one after another, each in the middle of a slice of the load: every service process killed with SIGKILL (and
started again, as a supervisor would), the broker node restarted, the PostgreSQL server restarted. After each,
the time to recover: until a ticket posted after the fault is accepted and routed and a mail delivered after it
is a ticket (and ``/health`` answers 200).

Then the books (:meth:`Soak.reconcile`), from the services' own databases (the soak owns the server): every
accepted request and every delivered mail exactly one ticket (by the subject each carries, which is its
idempotency key or its mail's own); every ticket routed (queued or assigned) with one routing decision, applied
once by the tickets service; every ticket once in analytics' facts and its backlog counters adding up to the
tickets; every outbox (events, and intake's mail) empty; what was parked, listed with ``helpdesk-parked``.
"""
import collections
import contextlib
import datetime
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid

import psycopg2
import requests

from mail_servers import SmtpSink, mails, running_dovecot
from postgres_server import PostgresServer
from rabbit_cluster import ClusterBroker, RabbitCluster
from stack import BIN, ROOT, Stack, wait_for

SUPPORT = "support@helpdesk.test"
# One fault per slice of the load, in this order; "broker" and "postgres" restart the soak's own servers, every
# other is a service process killed with SIGKILL and started again.
FAULTS = ("tickets", "routing", "broker", "analytics", "intake", "postgres", "kb_search", "surveys", "gateway")
RETRY_PAUSE = 0.2  # a client's back-off before it repeats a request (not a wait for a condition)
REQUEST_DEADLINE = 300.0  # seconds a client keeps repeating one request before it gives up (counted as lost)


def mail_env(mailbox, smtp):
    """Intake reading ``mailbox`` and sending to ``smtp`` (the e2e email settings)."""
    return {"HELPDESK_IMAP_URL": mailbox.url(team="support"), "HELPDESK_SMTP_URL": smtp.url,
            "HELPDESK_SUPPORT_ADDRESS": SUPPORT, "HELPDESK_IMAP_POLL_INTERVAL": "0.2",
            "HELPDESK_MAIL_POLL_INTERVAL": "0.2", "HELPDESK_MAIL_BACKOFF": "0.2,0.5,1"}


class Load:
    """The clients, the mail deliverer, and what they saw. ``allow(n)`` opens the gate to the first ``n``
    tickets (and the mails in proportion); the fault driver opens it slice by slice."""

    def __init__(self, soak, tickets, mails_total, clients):
        self.soak = soak
        self.total = tickets
        self.mails_total = mails_total
        self.keys = [f"soak-{soak.run_id}-api-{index:05d}" for index in range(tickets)]
        self.mail_subjects = [f"soak-{soak.run_id}-mail-{index:05d}" for index in range(mails_total)]
        self.numbers = {}  # key -> ticket number answered
        self.replayed = set()  # keys answered 200: an earlier attempt had made the ticket
        self.given_up = {}  # key -> last answer, for requests never accepted
        self.retries = collections.Counter()  # why a request was repeated
        self.delivered = 0
        self._allowed = 0
        self._next = 0
        self._gate = threading.Condition()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]
        self._threads.append(threading.Thread(target=self._mailer, daemon=True))
        self.errors = []

    def allow(self, count):
        with self._gate:
            self._allowed = min(count, self.total)
            self._gate.notify_all()

    @property
    def accepted(self):
        return len(self.numbers)

    def start(self):
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def _take(self):
        with self._gate:
            while self._next >= self._allowed and self._next < self.total:
                self._gate.wait(0.5)
            if self._next >= self.total:
                return None
            self._next += 1
            return self._next - 1

    def _client(self):
        session = self.soak.stack.session()
        try:
            while (index := self._take()) is not None:
                key = self.keys[index]
                number, status = self.soak.post_ticket(session, key, self.retries, self.given_up)
                if number is not None:
                    self.numbers[key] = number
                    if status == 200:
                        self.replayed.add(key)
        except BaseException as error:  # a dead client would look like lost tickets: say why instead
            self.errors.append(repr(error))
            raise

    def _mailer(self):
        """Mail ``j`` is delivered once the tickets it keeps step with were sent, so mail arrives through every
        slice of the load (and so through every fault)."""
        try:
            for index, subject in enumerate(self.mail_subjects):
                due = (index * self.total) // max(self.mails_total, 1)
                while self._next < due:
                    time.sleep(0.02)  # the pace of the tickets: a pacing interval, not a wait for a condition
                self.soak.deliver(subject, f"mail-{index % 50}")
                self.delivered += 1
        except BaseException as error:
            self.errors.append(repr(error))
            raise


class Soak:
    """``with Soak(workdir, tickets, mails) as soak: soak.run(); report = soak.reconcile()``."""

    FAULTS = FAULTS

    def __init__(self, workdir, tickets=300, mail_count=40, clients=8, gateway_workers=1, say=print):
        self.workdir = str(workdir)
        self.tickets = tickets
        self.mail_count = mail_count
        self.clients = clients
        self.gateway_workers = gateway_workers
        self.say = say
        self.run_id = uuid.uuid4().hex[:8]
        self.faults = []  # dicts: fault, at (s after the load started), recovered (s), retries during
        self.probe_keys = []
        self.probe_mails = []
        self._exit = contextlib.ExitStack()

    # --- the platform -----------------------------------------------------------------------------------

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc):
        self._exit.close()

    def _start(self):
        started = time.monotonic()
        # a name of its own: the first full run lost its node to a SIGKILL from outside, mid-run, while another
        # run's three-node cluster (nodes hd1-..., hd2-...) was being torn down on the same machine
        self.broker = RabbitCluster(os.path.join(self.workdir, "rabbit"), size=1, prefix="soak")
        self._exit.callback(self.broker.stop)
        booting = threading.Thread(target=self.broker.start)  # the node boots while the databases are made
        booting.start()
        self.postgres = PostgresServer(prefix="helpdesk-soak-pg-").start()
        self._exit.callback(self.postgres.stop)
        # its log kept with the stack's (the server's folder goes with it)
        self._exit.callback(lambda: shutil.copy(os.path.join(self.postgres.root, "server.log"),
                                                os.path.join(self.workdir, "postgres.log")))
        self.dovecot = self._exit.enter_context(running_dovecot("helpdesk-soak-dovecot-"))
        self.mailbox = self.dovecot.mailbox()
        self.smtp = SmtpSink(os.path.join(self.workdir, "smtp")).start()
        self._exit.callback(self.smtp.stop)
        self.stack = Stack(os.path.join(self.workdir, "stack"), databases="postgres", postgres=self.postgres.databases,
                           gateway_workers=self.gateway_workers,
                           env={"HELPDESK_QUEUE_TYPE": "quorum",
                                "HELPDESK_HEALTH_CACHE_SECONDS": "0",  # /health asks every service each time
                                **mail_env(self.mailbox, self.smtp)})
        self.say(f"PostgreSQL, its databases and the mail servers ready after {time.monotonic() - started:.0f} s")
        booting.join()
        self.say(f"the broker node ready after {time.monotonic() - started:.0f} s")
        self.node = self.broker.nodes[0]
        self.stack.vhost = ClusterBroker(self.node.amqp_uri)
        self._exit.callback(self.stack.stop)
        self.stack.start()
        self.say(f"platform up in {time.monotonic() - started:.0f} s: broker {self.node.amqp_uri}, "
                 f"PostgreSQL on port {self.postgres.port}, IMAP on {self.dovecot.port}")

    # --- the clients' part ------------------------------------------------------------------------------

    def body(self, key):
        """The request for ``key`` (the same on every attempt, as an idempotent retry must be)."""
        return {"subject": key, "description": f"Soak ticket {key}: the VPN drops every few minutes.",
                "requester": {"email": f"soak-{int(key.rsplit('-', 1)[1]) % 97}@example.com", "name": "Soak Client"},
                "priority": "normal"}

    def post_ticket(self, session, key, retries, given_up):
        """POST until accepted (201, or 200 for an earlier attempt's ticket); ``(number, status)`` or
        ``(None, None)`` after ``REQUEST_DEADLINE``. Connection errors, time-outs and 5xx are repeated."""
        deadline = time.monotonic() + REQUEST_DEADLINE
        last = None
        while time.monotonic() < deadline:
            try:
                response = session.post(f"{self.stack.url}/api/v1/tickets", json=self.body(key),
                                        headers={"Idempotency-Key": key}, timeout=30)
            except requests.RequestException as error:
                last = type(error).__name__
                retries["connection error" if isinstance(error, requests.ConnectionError) else last] += 1
            else:
                if response.status_code in (200, 201):
                    return response.json()["number"], response.status_code
                last = f"{response.status_code} {response.text[:200]}"
                if response.status_code < 500:
                    given_up[key] = last  # refused: a client does not repeat a 4xx
                    return None, None
                retries[str(response.status_code)] += 1
            time.sleep(RETRY_PAUSE)
        given_up[key] = last
        return None, None

    def deliver(self, subject, sender):
        self.mailbox.deliver(mails.plain(f"Soak Customer <{sender}@example.org>", subject,
                                         f"Soak mail {subject}: the printer prints blank pages.",
                                         message_id=f"{subject}@soak.example"))

    # --- faults -----------------------------------------------------------------------------------------

    def _kill(self, process):
        os.killpg(process.pid, signal.SIGKILL)  # the process group: a gunicorn master takes its workers along
        process.wait(30)

    def apply(self, fault):
        stack = self.stack
        if fault == "broker":
            self.node.restart()
        elif fault == "postgres":
            self.postgres.restart()
        elif fault == "tickets":
            victim = stack.tickets.pop(0)
            self._kill(victim)
            stack.start_tickets()
        elif fault == "gateway":
            self._kill(stack.gateway)
            stack.start_gateway()
        else:
            self._kill(stack.services[fault])
            stack.start_service(fault)

    def servers_down(self):
        """What died that the soak did not kill (a broker node or database server stopped from outside)."""
        down = []
        if self.node.process.poll() is not None:
            down.append(f"the RabbitMQ node {self.node.name} (exit {self.node.process.returncode})")
        if not os.path.exists(os.path.join(self.postgres.data, "postmaster.pid")):
            down.append("the PostgreSQL server")
        return down

    def tickets_db(self):
        return psycopg2.connect(self.stack.tickets_db_url)

    def _query(self, url, sql, args=()):
        """Rows of ``sql`` on the database at ``url``; None while the server cannot answer (restarting)."""
        try:
            connection = psycopg2.connect(url, connect_timeout=5)
        except psycopg2.OperationalError:
            return None
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
                return cursor.fetchall()
        except psycopg2.OperationalError:
            return None
        finally:
            connection.close()

    def recovered(self, index, load, fault_time):
        """Wait until the platform serves end to end again: a ticket posted now accepted and routed, a mail
        delivered now a ticket, /health 200 from checks made after the fault (``fault_time``, ``time.time()``).
        Returns the seconds it took from the call."""
        started = time.monotonic()
        key = f"soak-{self.run_id}-probe-{index:02d}"
        subject = f"soak-{self.run_id}-probemail-{index:02d}"
        self.probe_keys.append(key)
        self.probe_mails.append(subject)
        self.deliver(subject, "probe")
        session = self.stack.session()
        number, _ = self.post_ticket(session, key, load.retries, load.given_up)
        assert number is not None, f"the probe after fault {index} was never accepted: {load.given_up.get(key)}"
        load.numbers[key] = number
        stages = self.stages = {"accepted": time.monotonic() - started}  # where a long recovery spent its time

        def routed():
            try:
                answer = session.get(f"{self.stack.url}/api/v1/tickets/{number}/routing", timeout=10)
            except requests.RequestException:
                return False
            return answer.status_code == 200 and answer.json().get("state") in ("queued", "assigned")

        wait_for(routed, timeout=REQUEST_DEADLINE, what=f"the probe ticket {number} to be routed")
        stages["routed"] = time.monotonic() - started
        wait_for(lambda: self._query(self.stack.tickets_db_url, "SELECT number FROM tickets WHERE subject = %s",
                                     (subject,)), timeout=REQUEST_DEADLINE, interval=0.1,
                 what=f"the probe mail {subject} to become a ticket")
        stages["mail"] = time.monotonic() - started
        wait_for(lambda: self.checked_healthy_since(fault_time), timeout=REQUEST_DEADLINE, interval=0.2,
                 what="/health checked after the fault, every service answering")
        return time.monotonic() - started

    def checked_healthy_since(self, moment):
        """/health answered 200 from checks made after ``moment`` (``time.time()``). The gateway answers with its
        last result while a check is running (a dead service's ping waits for the RPC timeout), so a plain 200
        right after a kill may be the answer from before it."""
        try:
            answer = self.stack.session().get(f"{self.stack.url}/health", params={"details": 1}, timeout=30)
        except requests.RequestException:
            return False
        if answer.status_code != 200:
            return False
        return datetime.datetime.fromisoformat(answer.json()["checked_at"]).timestamp() >= moment

    # --- the run ----------------------------------------------------------------------------------------

    def run(self, faults=FAULTS):
        """The load, with each fault in the middle of a slice of it; returns when every request was answered
        (or given up) and every mail delivered."""
        load = self.load = Load(self, self.tickets, self.mail_count, self.clients).start()
        slices = len(faults) + 1
        began = self.began = time.monotonic()
        for index, fault in enumerate(faults):
            low, high = index * self.tickets // slices, (index + 1) * self.tickets // slices
            load.allow(high)
            middle = (low + high) // 2
            wait_for(lambda: load.accepted >= middle or load.errors or self.servers_down(), timeout=REQUEST_DEADLINE * 2,
                     interval=0.05, what=f"{middle} tickets accepted before fault {fault}")
            assert not load.errors, load.errors
            assert not self.servers_down(), self.servers_down()
            retries_before = sum(load.retries.values())
            at, fault_time = time.monotonic(), time.time()
            self.apply(fault)
            restarted = time.monotonic() - at
            recovery = restarted + self.recovered(index, load, fault_time)
            self.faults.append({"fault": fault, "at": at - began, "restart": restarted, "recovered": recovery,
                                "retries": sum(load.retries.values()) - retries_before})
            self.faults[-1]["stages"] = self.stages
            self.say(f"{fault:>9}: at {at - began:6.1f} s, back in {recovery:5.1f} s "
                     f"({self.faults[-1]['retries']} requests repeated meanwhile); {load.accepted} accepted so far; "
                     "probe " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in self.stages.items()))
        load.allow(self.tickets)
        finished = load.join(REQUEST_DEADLINE * 4)
        assert finished and not load.errors, f"the load did not finish: {load.errors}"
        self.duration = time.monotonic() - began
        return self

    # --- the books --------------------------------------------------------------------------------------

    def settled(self):
        """True once nothing is left to do: every outbox sent, every ticket routed, applied and counted."""
        figures = self._figures()
        return (figures["unsent"] == {} and figures["unrouted"] == 0 and figures["routing_unapplied"] == 0
                and figures["facts_missing"] == 0 and figures["mail_tickets_missing"] == 0) and figures

    def _figures(self):
        stack, run = self.stack, self.run_id
        rows = self._query(stack.tickets_db_url, "SELECT subject, number, channel, routing_sequence FROM tickets "
                                                 "WHERE subject LIKE %s", (f"soak-{run}-%",)) or []
        by_subject = collections.defaultdict(list)
        for subject, number, channel, sequence in rows:
            by_subject[subject].append((number, channel, sequence))
        numbers = [number for number, _, _ in (item for items in by_subject.values() for item in items)]
        routed = dict(self._query(stack.service_db_urls["routing"],
                                  "SELECT number, state FROM routed_tickets") or [])
        decisions = dict(self._query(stack.service_db_urls["routing"],
                                     "SELECT number, decisions FROM routed_tickets") or [])
        facts = {number for (number,) in self._query(stack.service_db_urls["analytics"],
                                                     "SELECT number FROM ticket_facts") or []}
        backlog = self._query(stack.service_db_urls["analytics"], "SELECT COALESCE(SUM(tickets), 0) FROM backlog_totals")
        unsent = {}
        for name, url in (("tickets", stack.tickets_db_url), ("gateway", stack.gateway_db_url),
                          *stack.service_db_urls.items()):
            has = self._query(url, "SELECT to_regclass('outbox') IS NOT NULL")
            if has and has[0][0]:
                count = self._query(url, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
                if count is None or count[0][0]:
                    unsent[f"{name} events"] = count[0][0] if count else "?"
        pending_mail = self._query(stack.service_db_urls["intake"],
                                   "SELECT count(*) FROM outgoing_mail WHERE status = 'pending'")
        if pending_mail is None or pending_mail[0][0]:
            unsent["intake mail"] = pending_mail[0][0] if pending_mail else "?"
        mail_subjects = self.load.mail_subjects[:self.load.delivered] + self.probe_mails
        return {
            "by_subject": by_subject, "numbers": numbers, "routed": routed, "decisions": decisions, "facts": facts,
            "backlog": backlog[0][0] if backlog else None, "unsent": unsent,
            "unrouted": sum(1 for number in numbers if routed.get(number) not in ("queued", "assigned")),
            "routing_unapplied": sum(1 for items in by_subject.values() for number, _, sequence in items
                                     if sequence != decisions.get(number)),
            "facts_missing": sum(1 for number in numbers if number not in facts),
            "mail_tickets_missing": sum(1 for subject in mail_subjects if subject not in by_subject),
        }

    def parked(self):
        """``helpdesk-parked list`` (the operator's tool) on the soak's broker: (count, listing)."""
        def tool(*args):
            return subprocess.run([os.path.join(BIN, "helpdesk-parked"), "--amqp-uri", self.node.amqp_uri, *args],
                                  cwd=ROOT, env=self.stack.env(), capture_output=True, text=True, timeout=120)
        count = tool("count")
        assert count.returncode == 0, f"helpdesk-parked count failed: {count.stderr}"
        listing = tool("list", "--limit", "50")
        return int(count.stdout.strip()), listing.stdout + listing.stderr

    def reconcile(self, timeout=600):
        """Wait (up to ``timeout``) for the platform to finish what the load left it, then count."""
        load = self.load
        started = time.monotonic()
        try:
            figures = wait_for(self.settled, timeout=timeout, interval=1.0, what="the platform to settle")
        except AssertionError:
            figures = self._figures()  # counted as it stands: the report says what is missing
        self.settle_time = time.monotonic() - started
        by_subject = figures["by_subject"]
        api_keys = load.keys + self.probe_keys
        accepted = [key for key in api_keys if key in load.numbers]
        mail_subjects = load.mail_subjects[:load.delivered] + self.probe_mails
        parked, listing = self.parked()
        report = {
            "api": {"sent": len(load.keys[:load._next]) + len(self.probe_keys), "accepted": len(accepted),
                    "tickets": sum(len(by_subject.get(key, [])) for key in api_keys),
                    "lost": sum(1 for key in accepted if not by_subject.get(key)),
                    "doubled": sum(len(by_subject.get(key, [])) - 1 for key in api_keys if len(by_subject.get(key, [])) > 1),
                    # an accepted request whose ticket is not the number it was answered with
                    "mismatched": sum(1 for key in accepted if by_subject.get(key)
                                      and by_subject[key][0][0] != load.numbers[key]),
                    "not accepted": len(load.given_up), "replayed": len(load.replayed)},
            "mail": {"sent": len(mail_subjects), "accepted": len(mail_subjects),
                     "tickets": sum(len(by_subject.get(subject, [])) for subject in mail_subjects),
                     "lost": sum(1 for subject in mail_subjects if not by_subject.get(subject)),
                     "doubled": sum(len(by_subject[s]) - 1 for s in mail_subjects if len(by_subject.get(s, [])) > 1),
                     "not email": sum(1 for s in mail_subjects for _, channel, _ in by_subject.get(s, [])
                                      if channel != "email")},
            "tickets": len(figures["numbers"]),
            "unrouted": figures["unrouted"],
            "decided twice": sum(1 for number in figures["numbers"] if figures["decisions"].get(number, 0) > 1),
            "routing unapplied": figures["routing_unapplied"],
            "analytics facts": len(figures["facts"]), "facts missing": figures["facts_missing"],
            "backlog counted": figures["backlog"],
            "unsent": figures["unsent"], "parked": parked, "parked listing": listing,
            "retries": dict(load.retries), "given up": dict(list(load.given_up.items())[:5]),
        }
        self.report = report
        return report

    def table(self):
        """The reconciliation and the faults, as Markdown tables."""
        report = self.report
        lines = ["| | sent | accepted | tickets | lost | doubled | parked |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for kind, label in (("api", "REST API (with Idempotency-Key)"), ("mail", "mail through IMAP")):
            row = report[kind]
            lines.append(f"| {label} | {row['sent']:,} | {row['accepted']:,} | {row['tickets']:,} | {row['lost']} | "
                         f"{row['doubled']} | {report['parked'] if kind == 'api' else ''} |")
        lines += ["", "| fault | at (s into the load) | process back (s) | platform serving again (s) | requests repeated |",
                  "| --- | --- | --- | --- | --- |"]
        names = {"broker": "RabbitMQ node killed (SIGKILL) and restarted", "postgres": "PostgreSQL restarted (pg_ctl restart -m fast)"}
        for fault in self.faults:
            lines.append(f"| {names.get(fault['fault'], fault['fault'] + ' killed (SIGKILL), started again')} | "
                         f"{fault['at']:.0f} | {fault['restart']:.1f} | {fault['recovered']:.1f} | {fault['retries']} |")
        checks = (f"tickets {report['tickets']:,}; routed: {report['tickets'] - report['unrouted']:,} "
                  f"(decided twice {report['decided twice']}, decision not applied by tickets {report['routing unapplied']}); "
                  f"analytics facts {report['analytics facts']:,} (missing {report['facts missing']}), backlog "
                  f"counters {report['backlog counted']:,}; outboxes unsent {report['unsent'] or 0}; "
                  f"{report['api']['replayed']} requests answered from an earlier attempt (200); "
                  f"{report['api']['mismatched']} answered with another ticket's number; "
                  f"{report['api']['not accepted']} never accepted; repeats by cause {report['retries']}")
        return "\n".join(lines) + "\n\n" + checks
