"""Prometheus metrics for nameko services: entrypoint timings and errors, served over HTTP.

Declare ``metrics = EntrypointMetrics()`` on a service. With ``METRICS_PORT`` in its config, the
process serves ``/metrics`` on that port (0 or absent: not served, as in tests).
"""
import time

from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Histogram, start_http_server

ENTRYPOINT_SECONDS = Histogram(
    "helpdesk_entrypoint_duration_seconds", "Time spent in a service entrypoint", ["service", "entrypoint"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ENTRYPOINT_ERRORS = Counter(
    "helpdesk_entrypoint_errors_total", "Entrypoint calls that raised", ["service", "entrypoint", "error"],
)

_served_ports = set()


class EntrypointMetrics(DependencyProvider):
    """Times every entrypoint of the service it is declared on."""

    def setup(self):
        self._started = {}
        port = int(self.container.config.get("METRICS_PORT") or 0)
        if port and port not in _served_ports:
            start_http_server(port, addr=self.container.config.get("METRICS_ADDR", "127.0.0.1"))
            _served_ports.add(port)

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        name = worker_ctx.entrypoint.method_name
        service = worker_ctx.service_name
        if started is not None:
            ENTRYPOINT_SECONDS.labels(service, name).observe(time.perf_counter() - started)
        if exc_info is not None:
            ENTRYPOINT_ERRORS.labels(service, name, exc_info[0].__name__).inc()

    def get_dependency(self, worker_ctx):
        return None
