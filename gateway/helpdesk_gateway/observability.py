"""``/health`` (is the platform able to serve?) and ``/metrics`` (Prometheus)."""
import os
import time

from flask import Blueprint, Response, current_app, jsonify
from kombu import Connection
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy import text

from .api import operation

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


@operation(bp, "/health", "GET", summary="Health of the platform", tag="operations", public=True)
def health():
    """200 when the broker, the gateway's database and every service answer; 503 with details otherwise."""
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
    healthy = all(check["ok"] for check in checks.values())
    response = jsonify({"status": "ok" if healthy else "unavailable", "checks": checks})
    response.status_code = 200 if healthy else 503
    return response


@operation(bp, "/metrics", "GET", summary="Prometheus metrics", tag="operations", public=True)
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
