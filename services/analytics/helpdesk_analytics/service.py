"""The analytics nameko service: thin entrypoints over ``facts`` (building the read model) and ``reports``.

Every event type analytics reads comes from ``<source>.batches`` (:func:`reliable_batch_handler`: a relay
batch per message, retried and parked on failure), and each batch is applied in one transaction by
:func:`facts.ingest`, once per event id. It publishes nothing, so it has no outbox.
"""
import random
import time

from nameko.rpc import rpc
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from helpdesk_common.adapters.consumer import reliable_batch_handler
from helpdesk_common.adapters.database import Database
from helpdesk_common.adapters.metrics import EntrypointMetrics
from helpdesk_common.contracts import validate
from helpdesk_common.contracts.routing import Viewer
from helpdesk_common.contracts.surveys import CsatSubmitted, NpsSubmitted
from helpdesk_common.database import utcnow
from helpdesk_common.errors import EXPECTED_ERRORS

from . import facts, reports
from .dependencies import AnalyticsSettings

DB_URL = "ANALYTICS_DB_URL"
RETRYABLE_PGCODES = ("40P01", "40001")
ATTEMPTS = 5


class AnalyticsService:
    name = "analytics"

    db = Database(DB_URL)
    settings = AnalyticsSettings()
    metrics = EntrypointMetrics()

    def _write(self, change):
        """Run ``change(session)`` in one transaction; again if it lost a race to another replica."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.db.begin() as session:
                    return change(session)
            except IntegrityError:
                if attempt == ATTEMPTS:
                    raise
            except DBAPIError as error:
                if getattr(error.orig, "pgcode", None) not in RETRYABLE_PGCODES or attempt == ATTEMPTS:
                    raise
            time.sleep(random.uniform(0.001, 0.02) * attempt)

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
