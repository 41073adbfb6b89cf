"""The audit log: every administrative change, who made it, when and what.

What counts as administrative: every change (not GET) through a route only admins may call (agents, teams,
routing rules, custom fields, the knowledge-base import, the quarantine and outgoing-mail queues, tokens;
new admin routes are included by their declaration alone), and the operator's command (tokens, the
bootstrap token, accounts). The gateway writes the entry, after the owning service accepted the change,
in its own database together with an ``audit_recorded`` event in its outbox, in one transaction; a relay
thread in each gateway process publishes the outbox on ``gateway.events`` (the services' ``OutboxRelay``
logic, driven by a thread since the gateway runs no nameko container). Admins read the log at
``GET /api/v1/audit``.

The entry's ``details`` hold the request's JSON body when it is small (the change itself: a team's new
description, an agent's skills), else its size; bodies of token routes hold no secret (a token is only
ever in the answer).

One way for both doors: :func:`record_change` writes the entry for a change made in this request, named by
the REST operation that makes it. The API's hook calls it for the route itself; a workspace admin page calls
it for the route whose gateway function it called (``ui/admin*.py``), with the body it gave that function,
so an entry reads the same whichever door the change came through (``details.via`` says ``workspace``).
"""
import json
import logging
import threading

from flask import current_app, g, request
from sqlalchemy import select

from helpdesk_common.adapters.exchanges import event_exchanges
from helpdesk_common.adapters.relay import ConfirmedPublisher, OutboxRelay
from helpdesk_common.events import new_event
from helpdesk_common.outbox import register_relay, stage

from .api import operation_for
from .models import AuditEntry, Outbox

log = logging.getLogger(__name__)

MAX_DETAIL_BYTES = 4096


def view(entry):
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor, "action": entry.action,
            "target": entry.target, "details": entry.details or {}, "request_id": entry.request_id}


def record(session, actor, action, target=None, details=None, request_id=None):
    """Add an entry and its event in the caller's transaction."""
    entry = AuditEntry(actor=actor, action=action, target=target, details=details or {}, request_id=request_id)
    session.add(entry)
    session.flush()
    stage(session, Outbox, new_event("audit_recorded", {"entry": view(entry)}, correlation_id=request_id,
                                     subject=target))
    return entry


def body_details(body):
    """The change's body when small, else its size."""
    if body is None:
        return {}
    text = json.dumps(body, ensure_ascii=False, default=str)
    return {"body": body} if len(text.encode()) <= MAX_DETAIL_BYTES else {"body_bytes": len(text.encode())}


def _body_details():
    return body_details(request.get_json(silent=True, cache=True) if request.is_json else None)


def record_change(endpoint, target, details):
    """Record an administrative change made in this request by its person or token (``g.identity``), as
    the REST operation ``endpoint`` ("routing.create_agent"): action ``<METHOD> <route>``."""
    operation = operation_for(endpoint)
    sessions = current_app.extensions["helpdesk.db"]
    with sessions.begin() as session:
        record(session, g.identity.actor, f"{operation.method} {operation.rule}", target=target, details=details,
               request_id=g.get("request_id"))
    g.audited = True


def after_admin_change(response):
    """``after_request`` hook: record a successful change made through an admin-only route."""
    if request.method == "GET" or request.url_rule is None or not 200 <= response.status_code < 300:
        return response
    operation = operation_for(request.endpoint)
    if operation.endpoint == "" or operation.token_scope != "admin" or getattr(g, "audited", False):
        return response
    record_change(request.endpoint, request.path, {**_body_details(), "status": response.status_code})
    return response


class GatewayRelay(OutboxRelay):
    """The services' relay logic (``relay_pending``: batches, publisher confirms, locking on PostgreSQL),
    driven by a daemon thread of this gateway process."""

    def __init__(self, sessions, amqp_uri):
        super().__init__(Outbox, None, "gateway")
        self.sessions = sessions
        self._exchange, batches = event_exchanges("gateway")
        self._publisher = ConfirmedPublisher(amqp_uri, self._exchange, batch_exchange=batches)
        self._woken = threading.Event()
        self._lock = threading.Lock()

    def wake(self):
        self._woken.set()
        self.ensure_running()

    def ensure_running(self):
        """Start the thread (once per process: gunicorn forks the workers after the app is built)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="gateway-relay", daemon=True)
                self._thread.start()

    def _loop(self):
        while True:
            try:
                while self.relay_pending():
                    pass
            except Exception:  # the broker or database is down: the rows wait for the next try
                log.warning("the gateway's outbox relay failed; retrying", exc_info=True)
            self._woken.wait(self.poll_interval)
            self._woken.clear()


def start_relay(app, settings):
    relay = app.extensions["helpdesk.relay"] = GatewayRelay(app.extensions["helpdesk.db"], settings.amqp_uri)
    register_relay(Outbox, relay)
    return relay


def entries(sessions, limit=50, before=None, actor=None, action=None):
    """Newest first; ``before``: an id (the last of the previous page)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    with sessions() as session:
        return [view(entry) for entry in session.scalars(query)]
