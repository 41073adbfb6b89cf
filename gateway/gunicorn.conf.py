"""gunicorn settings of the gateway (``gunicorn -c gateway/gunicorn.conf.py 'helpdesk_gateway.app:create_app()'``)."""
import os

bind = os.environ.get("HELPDESK_BIND", f"127.0.0.1:{os.environ.get('HELPDESK_PORT', '8000')}")
# Threads, not greenlets: the gateway is not monkey-patched, and each thread borrows its own RPC proxy.
worker_class = "gthread"
workers = int(os.environ.get("HELPDESK_GATEWAY_WORKERS", "2"))
# 64: every open workspace page holds a thread for its live stream (streams.py); an idle one costs ~16 kB and
# no CPU, while 16 threads held the live pages of 16 people at most (gateway/README.md, "open pages").
threads = int(os.environ.get("HELPDESK_GATEWAY_THREADS", "64"))
keepalive = 30
accesslog = os.environ.get("HELPDESK_ACCESS_LOG") or None
graceful_timeout = 10


def on_starting(server):
    # Several worker processes share one metrics view through prometheus_client's multiprocess mode.
    directory = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.abspath("var/prometheus"))
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
