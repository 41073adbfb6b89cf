"""The whole platform against its Python peer: tickets created through the REST API, same load generator.

Starts every process as ``make run`` does (tickets, intake, routing, kb_search, surveys, analytics and the
gateway with its default two workers; SQLite; a throwaway RabbitMQ vhost), or measures a running platform
(``--url`` and ``--token``). In the same run it installs django-helpdesk (pinned below) into a throwaway
virtualenv from PyPI, on SQLite, served by gunicorn with 4 sync workers, and drives its REST API
(``POST /api/tickets/`` with a DRF token) with the same generator — ``wrk`` (Debian's package), closed
loop, one connection per client — and the same ticket text. Prints both, and the ratio, per client count;
the peer's best rate over every client count measured is its figure for the ratio at 16 clients.

    .venv/bin/python bench/platform.py [--clients 1,16] [--peer-clients 1,4,8,16] [--seconds 20]

The peer sends its mail with Django's dummy backend (its best case: this platform sends its
acknowledgements asynchronously, through its outbox). Memory is each process's resident set at the end.
"""
import os.path
import sys

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402

warnings.simplefilter("ignore")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import requests  # noqa: E402

from tests.stack import Stack, free_port, wait_for  # noqa: E402


def _load_procstat():
    # bench/ is off the path here (platform.py's name shadows the standard module): load procstat by its file.
    import importlib.util
    spec = importlib.util.spec_from_file_location("procstat", os.path.join(ROOT, "bench", "procstat.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_procstat = _load_procstat()

TICK = os.sysconf("SC_CLK_TCK")
PEER = ["django-helpdesk==2.6.1", "Django==5.2.20", "djangorestframework==3.18.3", "gunicorn==27.0.1"]
SUBJECT = "VPN drops every few minutes"
DESCRIPTION = "Since the update this morning the VPN disconnects every few minutes. Please help."
REQUESTER = "ann@example.com"

PEER_SETTINGS = """
SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                  "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
                  "django.contrib.sites", "django.contrib.humanize", "rest_framework",
                  "rest_framework.authtoken", "helpdesk"]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware",
              "django.contrib.sessions.middleware.SessionMiddleware",
              "django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware",
              "django.contrib.auth.middleware.AuthenticationMiddleware",
              "django.contrib.messages.middleware.MessageMiddleware"]
ROOT_URLCONF = "peer_urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                 "django.contrib.auth.context_processors.auth",
                                                 "django.contrib.messages.context_processors.messages"]}}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "%(db)s",
                         "OPTIONS": {"timeout": 30}}}
SITE_ID = 1
STATIC_URL = "/static/"
USE_TZ = True
HELPDESK_TEAMS_MODE_ENABLED = False
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"]}
"""
PEER_URLS = """
from django.urls import include, path
urlpatterns = [path("", include("helpdesk.urls", namespace="helpdesk"))]
"""
PEER_SETUP = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from helpdesk.models import Queue
user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True, "email": "bench@example.org"})
queue, _ = Queue.objects.get_or_create(slug="support", defaults={"title": "Support"})
token, _ = Token.objects.get_or_create(user=user)
print(token.key, queue.id)
"""


class Peer:
    """django-helpdesk in a throwaway virtualenv (kept in ``var/bench`` between runs), SQLite, gunicorn."""

    def __init__(self, workdir, workers=4):
        self.venv = os.path.join(ROOT, "var", "bench", "django-helpdesk-venv")
        self.workdir = workdir
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def install(self):
        stamp = os.path.join(self.venv, ".bench-installed")
        if os.path.exists(stamp) and open(stamp).read() == " ".join(PEER):
            return
        shutil.rmtree(self.venv, ignore_errors=True)
        subprocess.run(["python3.11", "-m", "venv", self.venv], check=True)
        subprocess.run([os.path.join(self.venv, "bin", "pip"), "install", "-q", "--disable-pip-version-check",
                        *PEER], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(stamp, "w") as stream:
            stream.write(" ".join(PEER))

    def manage(self, *argv, **kwargs):
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="peer_settings", PYTHONPATH=self.workdir)
        return subprocess.run([os.path.join(self.venv, "bin", "django-admin"), *argv], cwd=self.workdir, env=env,
                              check=True, capture_output=True, text=True, **kwargs)

    def start(self):
        self.install()
        with open(os.path.join(self.workdir, "peer_settings.py"), "w") as stream:
            stream.write(PEER_SETTINGS % {"db": os.path.join(self.workdir, "peer.db")})
        with open(os.path.join(self.workdir, "peer_urls.py"), "w") as stream:
            stream.write(PEER_URLS)
        self.manage("migrate", "--noinput")
        self.token, self.queue = self.manage("shell", "-c", PEER_SETUP).stdout.split()[-2:]
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="peer_settings", PYTHONPATH=self.workdir)
        log = open(os.path.join(self.workdir, "peer.log"), "ab")
        self.process = subprocess.Popen(
            [os.path.join(self.venv, "bin", "gunicorn"), "-w", str(self.workers), "-b", f"127.0.0.1:{self.port}",
             "django.core.wsgi:get_wsgi_application()"], cwd=self.workdir, env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: _answers(f"{self.url}/api/tickets/", {"Authorization": f"Token {self.token}"}),
                 timeout=60, what="django-helpdesk answering")
        return self

    def request(self):
        return (f"{self.url}/api/tickets/", {"Authorization": f"Token {self.token}"},
                {"queue": int(self.queue), "title": SUBJECT, "description": DESCRIPTION,
                 "submitter_email": REQUESTER, "priority": 3})

    def tickets(self):
        import sqlite3
        with sqlite3.connect(os.path.join(self.workdir, "peer.db")) as db:
            return db.execute("SELECT count(*) FROM helpdesk_ticket").fetchone()[0]

    def pids(self):
        return {"peer gunicorn": _process_tree(self.process.pid)}

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(20)


class Platform:
    """This platform: every process started as ``make run`` starts it, or a running one."""

    def __init__(self, workdir, url=None, token=None, replicas=1):
        self.stack = None if url else Stack(workdir, gateway_workers=2)
        self.url = url
        self.token = token
        self.replicas = replicas

    def start(self):
        if self.stack:
            self.stack.start(tickets_replicas=self.replicas)
            self.url, self.token = self.stack.url, self.stack.token
        return self

    def request(self):
        return (f"{self.url}/api/v1/tickets", {"Authorization": f"Bearer {self.token}"},
                {"subject": SUBJECT, "description": DESCRIPTION, "requester": {"email": REQUESTER}})

    def tickets(self):
        if self.stack:
            import sqlite3
            with sqlite3.connect(self.stack.tickets_db_url.removeprefix("sqlite:///")) as db:
                return db.execute("SELECT count(*) FROM tickets").fetchone()[0]
        answer = requests.get(f"{self.url}/api/v1/tickets/counts", headers=self.request()[1], timeout=30).json()
        return answer["all"]

    def pids(self):
        if not self.stack:
            return {}
        parts = {"gateway": _process_tree(self.stack.gateway.pid)}
        parts.update({f"tickets-{i}": _process_tree(p.pid) for i, p in enumerate(self.stack.tickets)})
        parts.update({name: _process_tree(p.pid) for name, p in self.stack.services.items()})
        return parts

    def stop(self):
        if self.stack:
            self.stack.stop()


def _answers(url, headers):
    try:
        return requests.get(url, headers=headers, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _process_tree(pid):
    tree = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stream:
                    if int(stream.read().rsplit(")", 1)[1].split()[1]) == pid:
                        tree.append(int(entry))
            except OSError:
                continue
    return tree


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
        except OSError:
            continue
    return total


def rss_mb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as stream:
                total += next(int(line.split()[1]) for line in stream if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total / 1024


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
%(headers)s
done = function(summary, latency, requests)
  io.write(string.format("BENCH %%d %%d %%d %%d %%f %%f %%f\\n", summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000))
end
"""


def broker_cpu_seconds():
    """RabbitMQ's CPU so far (every ``beam.smp``). The broker is the machine's, shared with anything else using
    it meanwhile: its figure per ticket is an upper bound when others are busy."""
    return sum(cpu for _pid, name, _session, cpu in _procstat.processes() if name == "beam.smp")


def drive(target, clients, seconds, workdir, profile=None):
    """Run wrk with ``clients`` connections for ``seconds``; returns the counts and latencies. ``profile``: a
    folder where py-spy (``pip install py-spy``) writes each of the target's processes' sampled stacks
    (collapsed, one file per process) over the same seconds."""
    url, headers, body = target.request()
    script = os.path.join(workdir, "post.lua")
    with open(script, "w") as stream:
        stream.write(WRK_SCRIPT % {"body": json.dumps(json.dumps(body)), "headers": "\n".join(
            f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())})
    before = target.tickets()
    parts = target.pids()
    cpu_before = {part: cpu_seconds(pids) for part, pids in parts.items()}
    broker_before = broker_cpu_seconds()
    spies = []
    if profile:
        os.makedirs(profile, exist_ok=True)
        for part, pids in parts.items():
            for pid in pids:
                spies.append(subprocess.Popen(
                    ["py-spy", "record", "--nonblocking", "--rate", "200", "--format", "raw", "--duration",
                     str(seconds), "--pid", str(pid), "--output", os.path.join(profile, f"{part}-{pid}-{clients}.txt")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    out = subprocess.run(["wrk", "-t", str(min(clients, 2)), "-c", str(clients), "-d", f"{seconds}s",
                          "--timeout", "10s", "-s", script, url], capture_output=True, text=True, check=True).stdout
    for spy in spies:
        spy.wait()
    match = re.search(r"BENCH (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", out)
    requests_done, status_errors, socket_errors, duration_us = (int(match.group(i)) for i in range(1, 5))
    cpu = {part: cpu_seconds(pids) - cpu_before[part] for part, pids in parts.items()}
    broker = broker_cpu_seconds() - broker_before
    created = target.tickets() - before
    return {"cpu_ms_per_ticket": {part: 1000 * seconds / max(created, 1) for part, seconds in cpu.items()},
            "clients": clients, "rate": (requests_done - status_errors) / (duration_us / 1e6),
            "p50": float(match.group(5)), "p99": float(match.group(6)), "errors": status_errors + socket_errors,
            "sent": requests_done, "created": created, "broker_cpu_ms_per_ticket": 1000 * broker / max(created, 1)}


def main():
    parser = argparse.ArgumentParser(prog="bench/platform.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--peer-clients", default="1,4,8,16",
                        help="client counts for django-helpdesk; 'none' measures this platform alone (CPU per ticket)")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--url", help="measure a running platform instead of starting one")
    parser.add_argument("--token")
    parser.add_argument("--profile", help="a folder for py-spy's samples of each process at the last level")
    parser.add_argument("--replicas", help="the replicas curve instead: tickets service replicas to measure in turn, "
                                           "e.g. 1,2,3 (this platform alone, at each --clients level)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    if args.replicas:
        return replicas_curve([int(n) for n in args.replicas.split(",")],
                              [int(c) for c in args.clients.split(",")], args.seconds, args.warmup)
    clients = [int(c) for c in args.clients.split(",")]
    with_peer = args.peer_clients != "none"
    peer_clients = sorted({int(c) for c in args.peer_clients.split(",")} | set(clients)) if with_peer else []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-platform-") as workdir:
        results = {}
        memory = {}
        for name, target, levels in (("platform", Platform(os.path.join(workdir, "platform"), args.url, args.token),
                                      clients),
                                     ("peer", Peer(os.path.join(workdir, "peer")), peer_clients))[:2 if with_peer else 1]:
            os.makedirs(os.path.join(workdir, name), exist_ok=True)
            try:
                target.start()
                drive(target, 2, args.warmup, workdir)
                results[name] = {level: drive(target, level, args.seconds, workdir,
                                              args.profile if name == "platform" and level == levels[-1] else None)
                                 for level in levels}
                memory[name] = {part: rss_mb(pids) for part, pids in target.pids().items()}
            finally:
                target.stop()
    print(f"\nTickets created through the REST API, wrk closed loop, {args.seconds} s per level "
          f"(1-min load average at start {load:.1f}, at the end {os.getloadavg()[0]:.1f})"
          + ("; peer: django-helpdesk 2.6.1, SQLite, gunicorn 4 sync workers" if with_peer else ""))
    if with_peer:
        peer_best = max(results["peer"].values(), key=lambda r: r["rate"])
        print("\n| clients | this platform: tickets/s, p50 / p99 ms | django-helpdesk | ratio |")
        print("|---:|---|---|---:|")
        for level in clients:
            ours, theirs = results["platform"][level], results["peer"][level]
            print(f"| {level} | {ours['rate']:.0f} /s, {ours['p50']:.1f} / {ours['p99']:.1f} | {theirs['rate']:.0f} /s, "
                  f"{theirs['p50']:.1f} / {theirs['p99']:.1f} | {ours['rate'] / theirs['rate']:.1f}× |")
        print(f"| peer at its best ({peer_best['clients']} clients) | | {peer_best['rate']:.0f} /s, "
              f"{peer_best['p50']:.1f} / {peer_best['p99']:.1f} | "
              f"{results['platform'][max(clients)]['rate'] / peer_best['rate']:.1f}× (at {max(clients)}) |")
    else:
        print("\n| clients | this platform: tickets/s, p50 / p99 ms |")
        print("|---:|---|")
        for level in clients:
            ours = results["platform"][level]
            print(f"| {level} | {ours['rate']:.0f} /s, {ours['p50']:.1f} / {ours['p99']:.1f} |")
    print("\n| run | clients | requests answered | errors | tickets created |")
    print("|---|---:|---:|---:|---:|")
    for name in results:
        for level, r in results[name].items():
            print(f"| {name} | {level} | {r['sent']} | {r['errors']} | {r['created']} |")
    shown = [clients[0], clients[-1]] if len(clients) > 1 else clients
    print(f"\n| process | CPU ms per ticket at {' / '.join(map(str, shown))} clients | resident set MB at the end |")
    print("|---|---:|---:|")
    for name in memory:
        levels = results[name]
        for part, mb in memory[name].items():
            cpu = " / ".join(f"{levels[level]['cpu_ms_per_ticket'].get(part, 0):.2f}" for level in shown
                             if level in levels)
            print(f"| {name}: {part} | {cpu} | {mb:.0f} |")
        total = " / ".join(f"{sum(levels[level]['cpu_ms_per_ticket'].values()):.2f}" for level in shown
                           if level in levels)
        print(f"| {name}: every process | {total} | {sum(memory[name].values()):.0f} |")
        broker = " / ".join(f"{levels[level]['broker_cpu_ms_per_ticket']:.2f}" for level in shown if level in levels)
        print(f"| {name}: RabbitMQ (the machine's, shared: an upper bound) | {broker} | |")

def replicas_curve(replica_counts, clients, seconds, warmup):
    """The same load on the platform started with each number of tickets service replicas in turn (the
    other services one process each, as ``make run``): what a replica more buys on this machine."""
    load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as workdir:
        for replicas in replica_counts:
            target = Platform(os.path.join(workdir, f"replicas-{replicas}"), replicas=replicas)
            os.makedirs(target.stack.workdir, exist_ok=True)
            try:
                target.start()
                drive(target, 2, warmup, workdir)
                for level in clients:
                    result = drive(target, level, seconds, workdir)
                    cpu = result["cpu_ms_per_ticket"]
                    tickets_cpu = sum(ms for part, ms in cpu.items() if part.startswith("tickets-"))
                    rows.append((replicas, level, result, tickets_cpu, sum(cpu.values())))
            finally:
                target.stop()
    print(f"\nThe replicas curve: tickets created through the REST API, wrk closed loop, {seconds} s per row, "
          f"SQLite, gateway 2 workers (1-min load average at start {load:.1f}, at the end {os.getloadavg()[0]:.1f})")
    print("\n| tickets replicas | clients | tickets/s | p50 / p99 ms | errors | CPU ms per ticket: tickets (all replicas) / every process | RabbitMQ CPU ms per ticket |")
    print("|---:|---:|---:|---|---:|---:|---:|")
    for replicas, level, r, tickets_cpu, total in rows:
        print(f"| {replicas} | {level} | {r['rate']:.0f} | {r['p50']:.1f} / {r['p99']:.1f} | {r['errors']} | "
              f"{tickets_cpu:.2f} / {total:.2f} | {r['broker_cpu_ms_per_ticket']:.2f} |")


if __name__ == "__main__":
    main()
