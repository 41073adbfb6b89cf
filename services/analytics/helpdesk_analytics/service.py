"""The analytics nameko service: thin entrypoints over ``facts`` (building the read model) and ``reports``.

Every event type analytics reads comes from ``<source>.batches`` (:func:`reliable_batch_handler`: a relay
batch per message, retried and parked on failure), and each batch is applied in one transaction by
:func:`facts.ingest`, once per event id. It publishes nothing, so it has no outbox.
"""

import eventlet
from helpdesk_common.adapters.queues import RpcProxy, rpc
from nameko.timer import timer
from prometheus_client import Gauge
from sqlalchemy import text

from helpdesk_common.adapters.consumer import reliable_batch_handler
from helpdesk_common.adapters.database import Database
from helpdesk_common.adapters.metrics import EntrypointMetrics
from helpdesk_common.contracts import validate
from helpdesk_common.contracts.routing import Viewer
from helpdesk_common.contracts.surveys import CsatSubmitted, NpsSubmitted
from helpdesk_common.database import run_in_transaction, utcnow
from helpdesk_common.errors import EXPECTED_ERRORS

from . import business, facts, reports
from .dependencies import AnalyticsSettings

DB_URL = "ANALYTICS_DB_URL"
OPEN_TICKETS = Gauge("helpdesk_open_tickets", "Tickets not resolved or closed", ["team", "priority"])
SLA_AT_RISK = Gauge("helpdesk_sla_at_risk_tickets", "Open tickets past an SLA warning, not breached", ["team"])
SLA_BREACHED = Gauge("helpdesk_sla_breached_tickets", "Open tickets with a breached SLA clock", ["team"])
WAITING_CHATS = Gauge("helpdesk_waiting_chats", "Chats waiting for an agent")
AGENTS_ONLINE = Gauge("helpdesk_agents_online", "Agents whose presence is online", ["team"])
CSAT_ROLLING = Gauge("helpdesk_csat_ratio", "Share of CSAT answers rating 4-5 over the last 7 days")
CSAT_ANSWERS = Gauge("helpdesk_csat_answers", "CSAT answers over the last 7 days")
TICKETS_CREATED = Gauge("helpdesk_tickets_created", "Tickets analytics has seen created (a counter kept in the "
                        "read model: rate() gives the arrival rate)")
ATTEMPTS = 5


class AnalyticsService:
    name = "analytics"

    db = Database(DB_URL)
    settings = AnalyticsSettings()
    metrics = EntrypointMetrics()
    routing = RpcProxy("routing")

    def _write(self, change):
        """Run ``change(session)`` in one transaction; again if it lost a race to another replica."""
        return run_in_transaction(self.db, change, attempts=ATTEMPTS)

    def _ingest(self, events):
        return self._write(lambda session: facts.ingest(session, events, self.settings))

    # --- events: one handler per type read (a queue each), every one the same ingestion ----------------

    @reliable_batch_handler("tickets", "ticket_created")
    def on_ticket_created(self, events):
        return self._ingest(events)

    @reliable_batch_handler("tickets", "ticket_updated")
    def on_ticket_updated(self, events):
        return self._ingest(events)

    @reliable_batch_handler("tickets", "status_changed")
    def on_status_changed(self, events):
        return self._ingest(events)

    @reliable_batch_handler("tickets", "message_added")
    def on_message_added(self, events):
        return self._ingest(events)

    @reliable_batch_handler("tickets", "sla_breached")
    def on_sla_breached(self, events):
        return self._ingest(events)

    @reliable_batch_handler("tickets", "sla_warning")
    def on_sla_warning(self, events):
        return self._ingest(events)

    @reliable_batch_handler("routing", "ticket_assigned")
    def on_ticket_assigned(self, events):
        return self._ingest(events)

    @reliable_batch_handler("routing", "ticket_escalated")
    def on_ticket_escalated(self, events):
        return self._ingest(events)

    @reliable_batch_handler("intake", "chat_started")
    def on_chat_started(self, events):
        return self._ingest(events)

    @reliable_batch_handler("intake", "chat_answered")
    def on_chat_answered(self, events):
        return self._ingest(events)

    @reliable_batch_handler("intake", "chat_ended")
    def on_chat_ended(self, events):
        return self._ingest(events)

    @reliable_batch_handler("kb_search", "suggestion_shown")
    def on_suggestion_shown(self, events):
        return self._ingest(events)

    @reliable_batch_handler("kb_search", "suggestion_deflected")
    def on_suggestion_deflected(self, events):
        return self._ingest(events)

    @reliable_batch_handler("surveys", "csat_submitted")
    def on_csat_submitted(self, events):
        return self._ingest(events)

    @reliable_batch_handler("surveys", "nps_submitted")
    def on_nps_submitted(self, events):
        return self._ingest(events)

    # --- business metrics -------------------------------------------------------------------------

    @timer(interval=15)
    def publish_business_metrics(self):
        """Set the business gauges from the read model (every replica alike: they tell the same store)."""
        with self.db() as session:
            now = business.snapshot(session, utcnow())
        _set_labelled(OPEN_TICKETS, now.open_tickets)
        _set_labelled(SLA_AT_RISK, {(team,): n for team, n in now.sla_at_risk.items()})
        _set_labelled(SLA_BREACHED, {(team,): n for team, n in now.sla_breached.items()})
        WAITING_CHATS.set(now.waiting_chats)
        CSAT_ANSWERS.set(now.csat_answers)
        CSAT_ROLLING.set(now.csat if now.csat is not None else float("nan"))
        TICKETS_CREATED.set(now.created_total)
        # Presence is routing's and travels in no event: asked over RPC, skipped while routing does not answer.
        try:
            with eventlet.Timeout(5):
                agents = self.routing.list_agents()
        except (eventlet.Timeout, Exception):  # noqa: B014 - a missing routing must not stop the other gauges
            return
        online = {}
        for agent in agents:
            if agent.get("presence") == "online":
                for team in agent.get("teams") or [""]:
                    online[(team,)] = online.get((team,), 0) + 1
        _set_labelled(AGENTS_ONLINE, online)

    # --- RPC ------------------------------------------------------------------------------------

    @rpc
    def ping(self):
        """For health checks: answers when the service is up and its database reachable."""
        with self.db() as session:
            session.execute(text("SELECT 1"))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def report(self, measure, query, viewer):
        who = validate(Viewer, viewer, prefix="viewer.")
        with self.db() as session:
            return reports.run(session, measure, query, who.model_dump(), utcnow())

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def record_survey_answer(self, kind, answer, event_id):
        """A CSAT or NPS answer handed over directly (``POST /api/v1/surveys/...``), on the same contract as
        the events: ``event_id`` makes a retried call count once."""
        model = CsatSubmitted if kind == "csat" else NpsSubmitted
        data = validate(model, answer).model_dump(mode="json")
        event = {"id": event_id, "type": f"{kind}_submitted", "source": "surveys", "data": data}
        return {"recorded": bool(self._ingest([event]))}


def _set_labelled(gauge, values):
    """Replace every series of ``gauge`` with ``values`` (label tuple -> value): a team with nothing open drops."""
    gauge.clear()
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
