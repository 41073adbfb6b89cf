"""The customer portal through the gateway at 100,000 articles: the help centre's home page, its search page,
the suggestions shown while typing (the portal's own htmx partial) and a request submitted with the form,
each at 1 and 16 clients; beside, in the same run, the search service's own in-process figures
(``bench/kb_api.py``'s baselines on the same index) and the REST web form (``POST /api/v1/intake/web-form``)
as the baseline of a submission.

The knowledge base is generated and indexed as ``bench/kb_api.py`` does (the embedded tantivy index folder of
a platform started as processes, like ``make run``: ``tests/stack.py``, SQLite, a throwaway RabbitMQ vhost).
The requests:

- ``GET /help/`` (the home page: categories and the most helpful articles, ``read_browse``);
- ``GET /help/search?q=`` (a search page, 20 results, in the browser's language);
- ``GET /help/suggest?q=`` (what the request form and the search box fetch every few keystrokes: the text so
  far, the last word unfinished; a match writes its suggestion, as in production), twice per level: texts
  nobody asked before (the gateway asks the knowledge base: ``service`` rows), then the same texts again (the
  gateway answers from its cache, ``helpdesk_gateway.suggestions``, and records the suggestions in batches:
  ``cache`` rows). Real typing lies between: the same questions and first letters recur;
- ``POST /help/embed/request`` (the request form as sent, form-encoded without files: the embedded form, which
  needs no CSRF cookie, so each client posts as a fresh browser would; each submission from its own address,
  so intake's limit per address is not what is measured), and the same request as JSON to
  ``POST /api/v1/intake/web-form`` with the admin token (the REST route whose function the page calls,
  ``api.intake.send_web_form``).

The gateway's per-address budgets are raised for the run (every client comes from 127.0.0.1).

    .venv/bin/python bench/portal.py                      # 100,000 articles, 1 and 16 clients
    .venv/bin/python bench/portal.py --articles 20000 --requests 400 --submissions 100 --concurrency 1,4
"""
import argparse
import http.client
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import warnings

warnings.simplefilter("ignore")
_HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(_HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, _HERE)
import kb_api  # noqa: E402  (its generator, query set, percentile and in-process baselines)
import kb_search as bench  # noqa: E402

from helpdesk_kb_search.backends.embedded import EmbeddedBackend  # noqa: E402
from helpdesk_kb_search.evaluation import load_collection  # noqa: E402
from helpdesk_gateway.suggestions import SETTLE_SECONDS  # noqa: E402
from tests.stack import Stack  # noqa: E402

UNLIMITED = "1000000/minute"


def client(port, work, threads, results):
    """Send ``work`` ([(method, path, body, headers, expected statuses)]) from ``threads`` keep-alive
    connections; report the seconds of each."""
    out, lock = [], threading.Lock()

    def run(share):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local = []
        for method, path, body, headers, expected in share:
            started = time.perf_counter()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            seconds = time.perf_counter() - started
            if response.status not in expected:
                raise SystemExit(f"{method} {path}: {response.status} {answer[:300]!r}")
            local.append(seconds)
        connection.close()
        with lock:
            out.extend(local)

    pool = [threading.Thread(target=run, args=(work[i::threads],)) for i in range(threads) if work[i::threads]]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put(out)


def cpu_seconds(process):
    """User + system CPU of a process and its children alive now (a gunicorn master's workers), from /proc."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in [process.pid] + _children(process.pid):
        try:
            with open(f"/proc/{pid}/stat") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as stream:
            kids = [int(child) for child in stream.read().split()]
    except OSError:
        return []
    return kids + [grandchild for kid in kids for grandchild in _children(kid)]


def answered_from(port):
    """The gateway's suggestions so far by source (``helpdesk_gateway_suggestions_total``, every worker)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    counts = {"cache": 0.0, "service": 0.0}
    for line in text.splitlines():
        if line.startswith("helpdesk_gateway_suggestions_total{"):
            for source in counts:
                if f'source="{source}"' in line:
                    counts[source] += float(line.split()[-1])
    return counts


def drive(port, label, work, concurrency, measured=()):
    """``measured``: processes whose CPU per request the row reports (the gateway, kb_search); with them, the
    share of suggestions the gateway answered from its cache."""
    before = [cpu_seconds(process) for process in measured]
    sources = answered_from(port) if measured else None
    row = _drive(port, label, work, concurrency)
    row["cpu_ms"] = [(cpu_seconds(process) - spent) / row["n"] * 1000 for process, spent in zip(measured, before)]
    if sources is not None:
        after = answered_from(port)
        cached, asked = after["cache"] - sources["cache"], after["service"] - sources["service"]
        row["cached"] = cached / max(1.0, cached + asked)
    return row


def _drive(port, label, work, concurrency):
    processes = min(concurrency, 4)
    threads = max(1, concurrency // processes)
    results = mp.Queue()
    clients = [mp.Process(target=client, args=(port, work[i::processes], threads, results)) for i in range(processes)]
    started = time.perf_counter()
    for proc in clients:
        proc.start()
    timings = []
    for _ in clients:
        timings.extend(results.get())
    elapsed = time.perf_counter() - started
    for proc in clients:
        proc.join()
    return kb_api.figures(label, concurrency, timings, elapsed, len(timings))


def pages(work, path, key, language_header=True):
    return [("GET", f"{path}?" + urllib.parse.urlencode({key: text}), None,
             {"Accept-Language": lang} if language_header else {}, (200,)) for lang, text in work]


def submissions(count, tag, rest, token=None):
    made = []
    for n in range(count):
        fields = {"name": "Bench", "email": f"bench-{tag}-{n}@example.com", "subject": f"Printer {n} prints nothing",
                  "description": "Since the update it prints nothing at all.", "submission_id": uuid.uuid4().hex}
        if rest:
            body = {"subject": fields["subject"], "description": fields["description"], "submission_id":
                    fields["submission_id"], "requester": {"email": fields["email"], "name": fields["name"]}}
            made.append(("POST", "/api/v1/intake/web-form", json.dumps(body).encode(),
                         {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}, (201,)))
        else:
            made.append(("POST", "/help/embed/request", urllib.parse.urlencode(fields).encode(),
                         {"Content-Type": "application/x-www-form-urlencoded"}, (201,)))
    return made


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000, help="size of the generated knowledge base")
    parser.add_argument("--requests", type=int, default=1000, help="page requests timed per row")
    parser.add_argument("--submissions", type=int, default=200, help="requests submitted per row")
    parser.add_argument("--concurrency", default="1,16", help="concurrent HTTP clients, comma-separated")
    parser.add_argument("--gateway-workers", type=int, default=2, help="gunicorn processes (make run: 2)")
    parser.add_argument("--only", default="home,search,suggest,submit", help="which rows, comma-separated")
    parser.add_argument("--index-from", help="copy this embedded index folder instead of indexing anew")
    parser.add_argument("--no-cache", action="store_true", help="the gateway's suggestion cache off (before it)")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    only = {part.strip() for part in args.only.split(",")}

    articles, queries = load_collection()
    typed = kb_api.typed(bench.latency_queries(queries, articles, args.requests))
    full = bench.latency_queries(queries, articles, args.requests)
    # Texts nobody typed before in this run, one list per level (the vocabulary's random part of each seed).
    fresh = {level: kb_api.typed(bench.latency_queries(queries, articles, len(queries) + args.requests,
                                                       seed=100 + level)[len(queries):]) for level in levels}
    workdir = tempfile.mkdtemp(prefix="portal-bench-")
    index_dir = os.path.join(workdir, "kb-index")
    if args.index_from:  # an index this script (or bench/kb_api.py) built before with the same --articles
        shutil.copytree(args.index_from, index_dir)
    rows, stack = [], None
    load_before = os.getloadavg()[0]
    try:
        if not args.index_from:
            print(f"indexing {args.articles:,} generated articles into {index_dir} ...", flush=True)
            backend = EmbeddedBackend(index_dir)
            backend.ensure_ready()
            indexing_s = bench.index_all(backend, bench.generate(args.articles, articles), batch=5000)
            backend.close()
            print(f"indexed in {indexing_s:.1f} s; starting the platform ...", flush=True)
        stack = Stack(workdir, gateway_workers=args.gateway_workers, env={
            "HELPDESK_RATE_LIMIT_ANONYMOUS": UNLIMITED, "HELPDESK_RATE_LIMIT_COSTLY": UNLIMITED,
            "HELPDESK_RATE_LIMIT_ADDRESS": UNLIMITED, "HELPDESK_RATE_LIMIT_TOKEN": UNLIMITED,
            **({"HELPDESK_SUGGEST_CACHE_SECONDS": "0"} if args.no_cache else {})})
        stack.start()
        drive(stack.port, "warm-up", pages(typed[:100], "/help/suggest", "q") + pages(full[:50], "/help/search", "q"),
              min(levels))
        time.sleep(SETTLE_SECONDS + 1)  # a gateway worker keeps nothing for a moment after it subscribes
        tag = uuid.uuid4().hex[:6]
        for concurrency in levels:
            home = [("GET", "/help/", None, {"Accept-Language": lang}, (200,)) for lang, _ in full]
            if "home" in only:
                rows.append(drive(stack.port, "gateway: GET /help/ (home page)", home, concurrency))
            if "search" in only:
                rows.append(drive(stack.port, "gateway: GET /help/search (search page)",
                                  pages(full, "/help/search", "q"), concurrency))
            measured = (stack.gateway, stack.services["kb_search"])
            if "suggest" in only:
                rows.append(drive(stack.port, "gateway: GET /help/suggest, texts not asked before (service)",
                                  pages(fresh[concurrency], "/help/suggest", "q"), concurrency, measured))
                rows.append(drive(stack.port, "gateway: GET /help/suggest, the same texts again (cache)",
                                  pages(fresh[concurrency], "/help/suggest", "q"), concurrency, measured))
            if "submit" in only:
                rows.append(drive(stack.port, "gateway: POST /help/embed/request (submit a request)",
                                  submissions(args.submissions, f"{tag}-p{concurrency}", rest=False), concurrency))
                rows.append(drive(stack.port, "gateway: POST /api/v1/intake/web-form (REST baseline of a submission)",
                                  submissions(args.submissions, f"{tag}-r{concurrency}", rest=True, token=stack.token),
                                  concurrency))
        stack.stop()
        stack = None
        rows.append(kb_api.in_process_search(index_dir, typed))
        rows.append(kb_api.in_process_service(index_dir, f"sqlite:///{workdir}/baseline-kb.db", typed))
    finally:
        if stack is not None:
            stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    load_after = os.getloadavg()[0]
    baseline = next(r for r in rows if r["label"].startswith("in-process search"))
    print(f"\nThe customer portal at {args.articles:,} articles (embedded backend, {os.cpu_count()} cores, gateway: "
          f"{args.gateway_workers} gunicorn workers; 1-minute load average {load_before:.1f} before, "
          f"{load_after:.1f} after: anything well above the core count means other work shared the machine)\n")
    print("| path | clients | requests | p50 ms | p99 ms | requests/s | p50 / in-process search p50 | CPU ms per "
          "request: gateway / kb_search |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        cpu = " / ".join(f"{ms:.2f}" for ms in row.get("cpu_ms", ())) or ""
        if "cached" in row:
            cpu += f" ({row['cached']:.0%} from the cache)"
        print(f"| {row['label']} | {row['concurrency']} | {row['n']} | {row['p50']:.2f} | {row['p99']:.2f} | "
              f"{row['rate']:.0f} | {row['p50'] / baseline['p50']:.1f}x | {cpu} |")
    print("\nIn-process rows: one call at a time on the same index (requests/s = 1 / mean latency). Gateway rows "
          "include HTTP, gunicorn, Jinja, the RPC round trips over RabbitMQ; a submission also intake's checks, "
          "the ticket's creation and the acknowledgement's queueing.")


if __name__ == "__main__":
    sys.exit(main())
