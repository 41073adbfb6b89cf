"""Portal suggestions through the gateway (``GET /api/v1/kb/suggest``) at 100,000 articles, against the
in-process suggest call as the baseline, in the same run.

The knowledge base is generated as in ``bench/kb_search.py`` (the labelled collection's vocabulary, Zipf-like)
and written straight into the embedded (tantivy) index folder of a platform started as processes, exactly
as ``make run`` starts it (``tests/stack.py``: the services, the gateway on gunicorn, a throwaway RabbitMQ
vhost, SQLite). The articles are in the index only, not in the service's database: the suggestion path
reads nothing else (``kb-reindex`` would empty such an index; the bench never runs it).

Each timed request is what the portal sends every few keystrokes: the text typed so far, its last word
unfinished. A request whose text matches writes its suggestion (a row and a ``suggestion_shown`` event in
the outbox) before it answers, as in production. Measured:

- ``in-process search``: ``helpdesk_kb_search.search.suggest`` on the same index files (the backend's work alone);
- ``in-process service call``: the service's ``suggest`` method (``worker_factory``), on the same index and a
  SQLite database: search plus the suggestion's write, no broker and no HTTP;
- ``gateway``: HTTP over keep-alive connections from client processes -> gunicorn -> nameko RPC over
  RabbitMQ -> the kb_search service, at each concurrency given.

The in-process rows run after the platform is stopped, so they have both cores to themselves.

    .venv/bin/python bench/kb_api.py                      # 100,000 articles, concurrency 1 and 16
    .venv/bin/python bench/kb_api.py --articles 20000 --requests 1000 --concurrency 1,4 --import 5000

Then, on the same platform (its index already holding the generated articles), bulk import throughput:
``POST /api/v1/kb/import`` of ``--import`` articles in one call, timed until a search finds every one of
them, against ``POST /api/v1/kb/articles`` one article at a time (``--one-by-one``) as the baseline.
"""
import argparse
import http.client
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings

warnings.simplefilter("ignore")
_HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(_HERE)
sys.path.insert(0, ROOT)


sys.path.insert(0, _HERE)
import kb_search as bench  # noqa: E402  (bench/kb_search.py: its generator, query set, percentile and bulk indexing)

from helpdesk_kb_search import search as kb_search_search  # noqa: E402
from helpdesk_kb_search.backends.embedded import EmbeddedBackend  # noqa: E402
from helpdesk_kb_search.evaluation import load_collection  # noqa: E402
from tests.stack import Stack  # noqa: E402

from helpdesk_common.contracts import validate  # noqa: E402
from helpdesk_common.contracts.kb import SuggestRequest, Viewer  # noqa: E402

ANONYMOUS = Viewer(actor="anonymous", role="anonymous")


def typed(queries):
    """What the portal sends: the text so far, the last word unfinished (as bench/kb_search.py times it)."""
    return [(lang, text[:max(3, len(text) - 3)]) for lang, text in queries]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def figures(label, concurrency, latencies_s, elapsed_s, matched):
    return {"label": label, "concurrency": concurrency, "n": len(latencies_s),
            "p50": percentile(latencies_s, 0.5) * 1000, "p99": percentile(latencies_s, 0.99) * 1000,
            "rate": len(latencies_s) / elapsed_s, "matched": matched}


# --- through the gateway ----------------------------------------------------------------------------

def client(port, work, threads, results):
    """GET the suggestions of ``work`` from ``threads`` keep-alive connections; report (seconds, matched)."""
    out, lock = [], threading.Lock()
    shares = [work[i::threads] for i in range(threads)]

    def run(share):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local = []
        for lang, text in share:
            path = "/api/v1/kb/suggest?" + urllib.parse.urlencode({"text": text, "lang": lang})
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            seconds = time.perf_counter() - started
            if response.status != 200:
                raise SystemExit(f"GET {path}: {response.status} {body[:300]!r}")
            local.append((seconds, b'"suggestion_id":null' not in body.replace(b" ", b"")))
        connection.close()
        with lock:
            out.extend(local)

    pool = [threading.Thread(target=run, args=(share,)) for share in shares if share]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put(out)


def drive(port, work, concurrency):
    processes = min(concurrency, 4)
    threads = max(1, concurrency // processes)
    results = mp.Queue()
    shares = [work[i::processes] for i in range(processes)]
    clients = [mp.Process(target=client, args=(port, share, threads, results)) for share in shares]
    started = time.perf_counter()
    for proc in clients:
        proc.start()
    timings = []
    for _ in clients:
        timings.extend(results.get())
    elapsed = time.perf_counter() - started
    for proc in clients:
        proc.join()
    return figures("gateway: GET /api/v1/kb/suggest", concurrency, [s for s, _ in timings], elapsed,
                   sum(1 for _, m in timings if m))


# --- in process -------------------------------------------------------------------------------------

def in_process_search(index_dir, work):
    backend = EmbeddedBackend(index_dir)
    backend.ensure_ready()
    for lang, text in work[:100]:  # warm-up: first queries open files, fill caches
        kb_search_search.suggest(backend, validate(SuggestRequest, {"text": text, "lang": lang}), ANONYMOUS)
    latencies, matched = [], 0
    started = time.perf_counter()
    for lang, text in work:
        t0 = time.perf_counter()
        items = kb_search_search.suggest(backend, validate(SuggestRequest, {"text": text, "lang": lang}),
                                         ANONYMOUS)
        latencies.append(time.perf_counter() - t0)
        matched += bool(items)
    elapsed = time.perf_counter() - started
    backend.close()
    return figures("in-process search (helpdesk_kb_search.search.suggest)", 1, latencies, elapsed, matched)


def in_process_service(index_dir, db_url, work):
    from unittest import mock

    from nameko.testing.services import worker_factory
    from sqlalchemy.orm import sessionmaker

    from helpdesk_common.adapters.database import engine_for
    from helpdesk_kb_search.migrate import upgrade
    from helpdesk_kb_search.service import KbSearchService

    upgrade(db_url)
    backend = EmbeddedBackend(index_dir)
    backend.ensure_ready()
    service = worker_factory(KbSearchService, index=backend,
                             db=sessionmaker(engine_for(db_url), expire_on_commit=False), outbox=mock.Mock())
    for lang, text in work[:100]:
        service.suggest(text, lang, None)
    latencies, matched = [], 0
    started = time.perf_counter()
    for lang, text in work:
        t0 = time.perf_counter()
        answer = service.suggest(text, lang, None)
        latencies.append(time.perf_counter() - t0)
        matched += answer["suggestion_id"] is not None
    elapsed = time.perf_counter() - started
    backend.close()
    return figures("in-process service call (KbSearchService.suggest: search + write)", 1, latencies, elapsed,
                   matched)


# --- bulk import until searchable --------------------------------------------------------------------

def _searchable(session, url, word, count, timeout=600):
    """Seconds until a search for ``word`` finds ``count`` articles (polled every 50 ms)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        reply = session.get(f"{url}/api/v1/kb/search", params={"q": word, "lang": "en", "size": 1}, timeout=30)
        if reply.status_code == 200 and reply.json()["total"] >= count:
            return time.perf_counter() - started
        time.sleep(0.05)
    raise SystemExit(f"{count} articles with {word!r} not searchable after {timeout} s")


def _import_articles(word, count):
    return [{"title": f"{word.capitalize()} router firmware {i}", "status": "published", "language": "en",
             "body": f"Update the {word} router model {i} from its admin page, then restart it.",
             "external_id": f"{word}-{i}"} for i in range(count)]


def import_rows(stack, count, one_by_one):
    """``POST /api/v1/kb/import`` of ``count`` articles (one call) until all are searchable, against
    ``POST /api/v1/kb/articles`` one article at a time (the baseline), on the same platform."""
    session, rows = stack.session(), []
    started = time.perf_counter()
    for article in _import_articles("singlezq", one_by_one):
        reply = session.post(f"{stack.url}/api/v1/kb/articles", json=article, timeout=30)
        if reply.status_code != 201:
            raise SystemExit(f"POST /kb/articles: {reply.status_code} {reply.text[:300]}")
    answered = time.perf_counter() - started
    searchable = answered + _searchable(session, stack.url, "singlezq", one_by_one)
    rows.append({"label": "POST /api/v1/kb/articles, one at a time (baseline)", "n": one_by_one,
                 "answered": answered, "searchable": searchable})
    quiet = _search_latencies(stack.url, lambda latencies: len(latencies) >= 100)
    searching, latencies = threading.Event(), []
    visitor = threading.Thread(target=lambda: latencies.extend(
        _search_latencies(stack.url, lambda _latencies: searching.is_set())))
    visitor.start()
    started = time.perf_counter()
    try:
        reply = session.post(f"{stack.url}/api/v1/kb/import",
                             json={"articles": _import_articles("bulkzq", count)}, timeout=60)
        answered = time.perf_counter() - started
        if reply.status_code != 200:
            raise SystemExit(f"POST /kb/import: {reply.status_code} {reply.text[:300]}")
        searchable = answered + _searchable(session, stack.url, "bulkzq", count)
    finally:
        searching.set()
        visitor.join()
    rows.append({"label": "POST /api/v1/kb/import, one call", "n": count, "answered": answered,
                 "searchable": searchable})
    return rows, {"quiet": quiet, "during import": latencies}


def _search_latencies(url, done):
    """A visitor's searches, one after another, until ``done(latencies)``; returns their seconds."""
    connection, latencies = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlsplit(url).port, timeout=30), []
    while not done(latencies):
        started = time.perf_counter()
        connection.request("GET", "/api/v1/kb/search?" + urllib.parse.urlencode({"q": "router firmware", "lang": "en"}))
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"search during the import: {response.status}")
        latencies.append(time.perf_counter() - started)
    connection.close()
    return latencies


def print_import_rows(result, load_before, load_after):
    rows, searches = result
    baseline = rows[0]["n"] / rows[0]["searchable"]
    print(f"\nBulk import until searchable (embedded backend, SQLite; 1-minute load average {load_before:.1f} "
          f"before, {load_after:.1f} after)\n")
    print("| path | articles | answered in s | all searchable in s | articles/s until searchable | vs baseline |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        rate = row["n"] / row["searchable"]
        print(f"| {row['label']} | {row['n']} | {row['answered']:.2f} | {row['searchable']:.2f} | {rate:.0f} | "
              f"{rate / baseline:.1f}x |")
    quiet = percentile(searches["quiet"], 0.5)
    print("\n| a visitor's searches (one at a time, through the gateway) | searches | p50 ms | p99 ms | max ms | "
          "p50 / quiet p50 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, latencies in searches.items():
        print(f"| {label} | {len(latencies)} | {percentile(latencies, 0.5) * 1000:.1f} | "
              f"{percentile(latencies, 0.99) * 1000:.1f} | {max(latencies) * 1000:.1f} | "
              f"{percentile(latencies, 0.5) / quiet:.1f}x |")


# --- the report -------------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000, help="size of the generated knowledge base")
    parser.add_argument("--requests", type=int, default=2000, help="suggestions timed per measurement")
    parser.add_argument("--concurrency", default="1,16", help="concurrent HTTP clients, comma-separated")
    parser.add_argument("--gateway-workers", type=int, default=2, help="gunicorn processes (make run: 2)")
    parser.add_argument("--import", dest="import_count", type=int, default=2000,
                        help="articles imported in one call until searchable (0: skip)")
    parser.add_argument("--one-by-one", type=int, default=200, help="articles written one at a time (baseline)")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]

    articles, queries = load_collection()
    work = typed(bench.latency_queries(queries, articles, args.requests))
    workdir = tempfile.mkdtemp(prefix="kb-api-bench-")
    index_dir = os.path.join(workdir, "kb-index")  # the folder Stack gives the service (HELPDESK_KB_INDEX_DIR)
    rows = []
    stack = None
    load_before = os.getloadavg()[0]
    try:
        print(f"indexing {args.articles:,} generated articles into {index_dir} ...", flush=True)
        backend = EmbeddedBackend(index_dir)
        backend.ensure_ready()
        indexing_s = bench.index_all(backend, bench.generate(args.articles, articles), batch=5000)
        backend.close()
        print(f"indexed in {indexing_s:.1f} s; starting the platform ...", flush=True)

        stack = Stack(workdir, gateway_workers=args.gateway_workers)
        stack.start()
        warm = work[:200]
        drive(stack.port, warm, min(levels))  # warm-up: connections, RPC proxies, index caches
        for concurrency in levels:
            rows.append(drive(stack.port, work, concurrency))
        if args.import_count:
            import_load = os.getloadavg()[0]
            imported = import_rows(stack, args.import_count, args.one_by_one)
            import_load = (import_load, os.getloadavg()[0])
        stack.stop()
        stack = None

        rows.append(in_process_search(index_dir, work))
        rows.append(in_process_service(index_dir, f"sqlite:///{workdir}/baseline-kb.db", work))
    finally:
        if stack is not None:
            stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    load_after = os.getloadavg()[0]
    baseline = next(r for r in rows if r["label"].startswith("in-process search"))
    print(f"\nPortal suggestions at {args.articles:,} articles (embedded backend, {os.cpu_count()} cores, "
          f"gateway: {args.gateway_workers} gunicorn workers; {len(work)} requests per row, "
          "the last word unfinished; 1-minute load average "
          f"{load_before:.1f} before, {load_after:.1f} after: anything well above the core count means other "
          "work shared the machine)\n")
    print("| path | concurrency | requests | with hits | p50 ms | p99 ms | requests/s | p50 / in-process search p50 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['label']} | {row['concurrency']} | {row['n']} | {row['matched']} | {row['p50']:.2f} | "
              f"{row['p99']:.2f} | {row['rate']:.0f} | {row['p50'] / baseline['p50']:.1f}x |")
    if args.import_count:
        print_import_rows(imported, *import_load)
    print("\nIn-process rows: one call at a time, so requests/s = 1 / mean latency. Gateway rows include HTTP, "
          "gunicorn, the RPC round trip over RabbitMQ and, for requests with hits, the suggestion's write "
          "(SQLite, serialised in the one kb_search process).")


if __name__ == "__main__":
    sys.exit(main())
