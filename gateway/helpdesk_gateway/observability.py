"""``/health`` (is the platform able to serve?), ``/metrics`` (Prometheus), and what every answer carries:
its correlation id (``X-Request-ID``) and the security headers."""
import os
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Literal, Optional

from flask import Blueprint, Response, current_app, g, jsonify
from kombu import Connection
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy import text

from helpdesk_common.contracts import Contract, View
from helpdesk_common.errors import Forbidden

from .api import operation, query_args
from .auth import Unauthorized

bp = Blueprint("observability", __name__)

REQUESTS = Counter("helpdesk_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram("helpdesk_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5))


def _timed(check):
    started = time.perf_counter()
    try:
        detail = check() or {}
        ok = True
    except Exception as error:  # any failure is reported, never raised: this is the health page
        detail, ok = {"error": f"{error.__class__.__name__}: {error}"}, False
    return {"ok": ok, "latency_ms": round((time.perf_counter() - started) * 1000, 1), **detail}


class HealthQuery(Contract):
    details: bool = False


class HealthView(View):
    status: Literal["ok", "degraded"]
    checked_at: Optional[datetime] = None  # with details: when the checks ran (answers are cached)
    checks: Optional[dict[str, dict]] = None  # with details: broker, database and each service


class HealthChecks:
    """The checks behind /health, run at most once per ``ttl`` seconds per gateway process.

    /health is public: uncached, every call would open a broker connection and make an RPC to each
    service, so anyone could multiply the platform's work by calling it. One thread runs the checks while
    the others answer with the last result (or wait for the first). A degraded result is kept only for a
    second, so a platform that just came up is seen healthy quickly (tests/stack.py waits on /health)."""

    DEGRADED_TTL = 1.0

    def __init__(self, ttl):
        self.ttl = ttl
        self._result = None  # (expires at, healthy, answer with details)
        self._lock = threading.Lock()

    def result(self):
        """``(healthy, answer with details)``."""
        current = self._result
        if current and current[0] > time.monotonic():
            return current[1:]
        if not self._lock.acquire(blocking=current is None):
            return current[1:]  # another thread is checking: the last answer will do meanwhile
        try:
            if self._result is not None and self._result[0] > time.monotonic():
                return self._result[1:]  # checked while this thread waited
            healthy, checks = _check_everything()
            ttl = self.ttl if healthy else min(self.ttl, self.DEGRADED_TTL)
            self._result = (time.monotonic() + ttl, healthy,
                            {"status": "ok" if healthy else "degraded",
                             "checked_at": datetime.now(timezone.utc).isoformat(), "checks": checks})
            return self._result[1:]
        finally:
            self._lock.release()


def _check_everything():
    settings = current_app.config["HELPDESK_SETTINGS"]

    def broker():
        with Connection(settings.amqp_uri, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)

    def database():
        with current_app.extensions["helpdesk.db"]() as session:
            session.execute(text("SELECT 1"))

    checks = {"broker": _timed(broker), "database": _timed(database)}
    rpc = current_app.extensions["helpdesk.rpc"]
    for service in settings.services:
        checks[service] = _timed(lambda: rpc.call(service, "ping") and None)
    return all(check["ok"] for check in checks.values()), checks


@operation(bp, "/health", "GET", summary="Health of the platform", tag="operations", public=True,
           query=HealthQuery, answer=HealthView, other_answers={503: HealthView}, errors=(401, 403, 422))
def health():
    """200 ``{"status": "ok"}`` when the broker, the gateway's database and every service answer, 503
    ``{"status": "degraded"}`` otherwise; nothing more for the public, and the answer is at most a few
    seconds old (``HELPDESK_HEALTH_CACHE_SECONDS``). ``?details=1`` with an admin token adds each check
    (``checks``: broker, database, each service, with latency and error) and ``checked_at``."""
    details = query_args(HealthQuery).details
    if details and g.identity.role != "admin":
        if g.identity.role == "anonymous":
            raise Unauthorized("The details of /health need an admin token: 'Authorization: Bearer <token>'.",
                               code="missing_token")
        raise Forbidden("The details of /health are for admins.", code="role_not_allowed")
    checks = current_app.extensions.get("helpdesk.health")
    if checks is None:  # one per app (gunicorn worker); made on first use, so app.py needs no line for it
        ttl = current_app.config["HELPDESK_SETTINGS"].health_cache_seconds
        checks = current_app.extensions.setdefault("helpdesk.health", HealthChecks(ttl))
    healthy, answer = checks.result()
    response = jsonify(answer if details else {"status": answer["status"]})
    response.status_code = 200 if healthy else 503
    return response


@operation(bp, "/metrics", "GET", summary="Prometheus metrics", tag="operations", public=True,
           media_type="text/plain")
def metrics():
    """Request counts and latencies per route, in the Prometheus text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


@operation(bp, "/api/openapi.json", "GET", summary="This API's OpenAPI 3.1 document", tag="operations",
           public=True)
def openapi_document():
    from .openapi import document

    return jsonify(document())


def observe(request, response, started):
    route = request.url_rule.rule if request.url_rule else "(unmatched)"
    REQUESTS.labels(request.method, route, response.status_code).inc()
    LATENCY.labels(request.method, route).observe(time.perf_counter() - started)


REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


def request_id(header):
    """The correlation id of a request: the client's ``X-Request-ID`` when it is a sane token, else a fresh
    one. It travels into logs, events and error messages, so a client must not be able to put newlines,
    markup or kilobytes there."""
    if header and REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def secure_headers(request, response):
    """Headers every answer carries (issue 17): browsers never guess a content type (``nosniff``), and
    answers with data are never stored by browsers or proxies. The OpenAPI document is public and changes
    only with a deployment: caches may keep it for a few minutes. Other paths (the UI's pages and assets)
    set their own policy."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.path == "/api/openapi.json" and response.status_code == 200:
        response.headers.setdefault("Cache-Control", "public, max-age=300")
    elif request.path.startswith("/api/") or request.path in ("/health", "/metrics"):
        response.headers["Cache-Control"] = "no-store"
    return response
