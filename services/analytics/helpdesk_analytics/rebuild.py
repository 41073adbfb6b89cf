"""``analytics-rebuild``: rebuild the ticket facts from the tickets service's history export, a page at a time,
with a progress bar. Safe while the service runs and events keep arriving: the export and the live events meet
on the same keys (``facts.ingest_export``), so nothing counts twice.

    analytics-rebuild [--config services/analytics/config.yaml] [--url DB_URL] [--page 500]
"""
import argparse
import os
import sys
import time

from sqlalchemy.orm import sessionmaker

from helpdesk_common.adapters.config import load_config
from helpdesk_common.adapters.database import engine_for

from . import detection, facts, settings as analytics_settings

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config.yaml")


def progress(done, total, started, stream=sys.stderr, width=30):
    """One line redrawn in place: a bar, the count, the rate."""
    share = done / total if total else 1.0
    bar = "#" * int(width * share) + "-" * (width - int(width * share))
    rate = done / max(time.monotonic() - started, 1e-6)
    stream.write(f"\r[{bar}] {done}/{total} tickets  {rate:,.0f}/s")
    stream.flush()


def rebuild(fetch_page, sessions, settings, page_size=500, report=progress):
    """Fetch every page (``fetch_page(cursor, limit)``) and apply it, one transaction per page. Returns the
    number of tickets applied."""
    cursor, done, started = None, 0, time.monotonic()
    while True:
        page = fetch_page(cursor, page_size)
        with sessions.begin() as session:
            done += facts.ingest_export(session, page["items"], settings)
            detection.record_tickets(session, [item["ticket"] for item in page["items"]])  # the surges' history
        report(done, max(page.get("total") or done, done), started)
        cursor = page.get("next_cursor")
        if cursor is None:
            return done


def main(argv=None):
    from nameko.standalone.rpc import ClusterRpcProxy  # the broker only for the command, not for rebuild()

    from helpdesk_common.adapters.queues import ConnectionReplyListener

    parser = argparse.ArgumentParser(prog="analytics-rebuild", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=os.environ.get("HELPDESK_ANALYTICS_CONFIG", DEFAULT_CONFIG))
    parser.add_argument("--url", help="the analytics database (default: ANALYTICS_DB_URL of the config)")
    parser.add_argument("--page", type=int, default=500, help="tickets per page (at most 1000)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    sessions = sessionmaker(engine_for(args.url or config["ANALYTICS_DB_URL"]), expire_on_commit=False)
    settings = analytics_settings.load(config.get("SLA_FILE") or None, config.get("WORKFLOW_FILE") or None)
    with ClusterRpcProxy({"AMQP_URI": config["AMQP_URI"], "serializer": "json"}, timeout=120,
                         reply_listener_cls=ConnectionReplyListener) as rpc:
        done = rebuild(lambda cursor, limit: rpc.tickets.export_history(cursor, limit), sessions, settings,
                       page_size=args.page)
    sys.stderr.write(f"\nrebuilt {done} tickets\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
