"""The analytics nameko service: thin entrypoints over ``facts`` (building the read model) and ``reports``.

Every event type analytics reads comes from ``<source>.batches`` (:func:`reliable_batch_handler`: a relay
batch per message, retried and parked on failure), and is applied by :func:`facts.ingest`, once per event id.
A relay batch arrives as one message per event type, each on its own queue, so the messages waiting together
(up to ``INGEST_BATCH_MAX`` events, new tickets for the surge detector included) are applied in one
transaction by the group commit (:class:`Collector`): one commit and one refresh of each ticket touched,
instead of one per event type. It publishes nothing, so it has no outbox.
"""

import eventlet
from helpdesk_common.adapters.queues import RpcProxy, rpc
from nameko.dependency_providers import Config
from nameko.timer import timer
from prometheus_client import Gauge
from sqlalchemy import text

from helpdesk_common.adapters.consumer import reliable_batch_handler
from helpdesk_common.adapters.database import Database
from helpdesk_common.adapters.group_commit import Collector
from helpdesk_common.adapters.metrics import EntrypointMetrics
from helpdesk_common.adapters.relay import OutboxRelay
from helpdesk_common.adapters.timers import config_timer
from helpdesk_common.contracts import validate
from helpdesk_common.contracts.contacts import PersonalDataQuery
from helpdesk_common.contracts.routing import Viewer
from helpdesk_common.contracts.analytics import ReportQuery, SavedReportRequest
from helpdesk_common.contracts.surveys import CsatSubmitted, NpsSubmitted
from helpdesk_common.database import run_in_transaction, utcnow
from helpdesk_common.errors import EXPECTED_ERRORS, Forbidden, NotFound

from . import business, detection, facts, personal_data, reports, saved_reports, store, summary
from .dependencies import AnalyticsSettings
from .surge_models import Outbox

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
SURGES_ACTIVE = Gauge("helpdesk_surges_active", "Surges announced (spike_detected) within the last hour", ["dimension"])
ATTEMPTS = 5


class AnalyticsService:
    name = "analytics"

    db = Database(DB_URL)
    settings = AnalyticsSettings()
    metrics = EntrypointMetrics()
    routing = RpcProxy("routing")
    kb_search = RpcProxy("kb_search")
    intake = RpcProxy("intake")
    config = Config()
    outbox = OutboxRelay(Outbox, DB_URL, source="analytics")
    # items: (what, events) as delivered, counted by their events
    ingestion = Collector("INGEST_BATCH_MAX", max_batch=2000, size=lambda item: len(item[1]))

    def _write(self, change):
        """Run ``change(session)`` in one transaction; again if it lost a race to another replica."""
        return run_in_transaction(self.db, change, attempts=ATTEMPTS)

    def _ingest(self, events):
        return self.ingestion.submit(("facts", events), self._apply_together, self._apply_alone)

    def _apply_together(self, items):
        """The delivered lists waiting together, in one transaction: the read model's events (once each by
        event id), and the new tickets for the surge detector (once each by number). If it fails, each list
        runs alone (:meth:`_apply_alone`), so a bad event fails only its own delivery."""
        def change(session):
            read = [event for what, events in items if what == "facts" for event in events]
            arrived = [event for what, events in items if what == "arrivals" for event in events]
            return ((facts.ingest(session, read, self.settings) if read else 0)
                    + (detection.record_arrivals(session, arrived) if arrived else 0))
        total = self._write(change)
        return [total if len(items) == 1 else None for _ in items]  # a count per list only when alone

    def _apply_alone(self, item):
        return self._apply_together([item])[0]

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

    @reliable_batch_handler("tickets", "contact_erased")
    def on_contact_erased(self, events):
        return self._ingest(events)

    # --- proactive problem detection ------------------------------------------------------------

    @reliable_batch_handler("tickets", "ticket_created")
    def record_arrivals(self, events):
        """The new tickets as the surge detector sees them (its own queue, so neither delivery's failure holds
        the other back; written in the same group commit as the read model's events)."""
        return self.ingestion.submit(("arrivals", events), self._apply_together, self._apply_alone)

    @config_timer("SURGE_INTERVAL", 60)
    def detect_surges(self):
        """Analyse new tickets' wording (the knowledge base's analysis, over RPC: skipped while kb_search does
        not answer, and the category, team and channel surges are still found), then announce surges."""
        with self.db() as session:
            pending = detection.unanalysed(session)
        if pending:
            try:
                with eventlet.Timeout(10):
                    terms = self.kb_search.analyze_texts([{"language": p["language"], "text": p["text"]}
                                                          for p in pending])
            except (eventlet.Timeout, Exception):  # noqa: B014 - a missing kb_search must not stop detection
                terms = None
            if terms is not None:
                by_number = {p["number"]: t for p, t in zip(pending, terms)}
                self._write(lambda session: detection.store_terms(session, by_number))
        now = utcnow()
        self._write(lambda session: detection.detect_and_announce(session, now))
        with self.db() as session:
            _set_labelled(SURGES_ACTIVE, {(d,): n for d, n in detection.active_surges(session, now).items()})

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def problems(self, viewer):
        """The surges of the last day and the open tickets worded alike, as ``viewer`` may see them:
        ``{"spikes": [...], "groups": [...]}``."""
        who = validate(Viewer, viewer, prefix="viewer.").model_dump()
        now = utcnow()
        with self.db() as session:
            scope = store.scope_of(session, who)
            return {"spikes": detection.recent_spikes(session, scope, now),
                    "groups": detection.similar_groups(session, scope, now)}

    # --- saved reports, key figures, the weekly summary -------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def save_report(self, report, viewer):
        command = validate(SavedReportRequest, report)
        who = validate(Viewer, viewer, prefix="viewer.").model_dump()
        return self._write(lambda session: saved_reports.save(session, command, who, utcnow()))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def saved_reports(self, viewer):
        who = validate(Viewer, viewer, prefix="viewer.").model_dump()
        with self.db() as session:
            return saved_reports.list_own(session, who)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def saved_report(self, report_id, viewer):
        who = validate(Viewer, viewer, prefix="viewer.").model_dump()
        with self.db() as session:
            return saved_reports.view(saved_reports.find(session, _record_id(report_id), who))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def delete_saved_report(self, report_id, viewer):
        who = validate(Viewer, viewer, prefix="viewer.").model_dump()
        return self._write(lambda session: saved_reports.delete(session, _record_id(report_id), who))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def run_saved_report(self, report_id, viewer):
        who = validate(Viewer, viewer, prefix="viewer.").model_dump()
        with self.db() as session:
            return saved_reports.run(session, _record_id(report_id), who, utcnow())

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def key_figures(self, query, viewer):
        """The dashboard's key figures over ``query``'s period (``ReportQuery`` fields; no grouping)."""
        who = validate(Viewer, viewer, prefix="viewer.").model_dump()
        asked = validate(ReportQuery, query, strict=False)
        with self.db() as session:
            return summary.key_figures(session, asked.from_, asked.to, asked.tz, who, utcnow(), asked.filters())

    @reliable_batch_handler("gateway", "account_changed")
    def on_account_changed(self, events):
        """The workspace accounts as the gateway announces them: the weekly summary's supervisors and admins."""
        return self._write(lambda session: summary.remember_accounts(session, events))

    @config_timer("WEEKLY_SUMMARY_INTERVAL", 3600)
    def send_weekly_summary(self):
        """Last week's key figures mailed through intake's outgoing mail, once a week per recipient
        (``summary_mails``), to every supervisor and admin account the gateway announced and to the extra
        addresses of ``WEEKLY_SUMMARY_TO``."""
        extra = str(self.config.get("WEEKLY_SUMMARY_TO") or "").split(",")
        recipients = self._read(lambda session: summary.recipients(session, extra))
        if recipients:
            summary.send_due(self._write, self._read, self.intake.send_account_mail, recipients,
                             self.config.get("WEEKLY_SUMMARY_TZ") or "UTC", utcnow())

    def _read(self, query):
        with self.db() as session:
            return query(session)

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
    def personal_data(self, query, viewer):
        """What the read model holds about a person's tickets and survey answers (an export on request)."""
        query, who = validate(PersonalDataQuery, query), validate(Viewer, viewer, prefix="viewer.")
        if who.role not in ("admin", "system"):
            raise Forbidden("Only admins may export a person's data.", code="admins_only")
        with self.db() as session:
            return personal_data.export(session, query.ticket_numbers, query.contact_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def record_survey_answer(self, kind, answer, event_id):
        """A CSAT or NPS answer handed over directly (``POST /api/v1/surveys/...``), on the same contract as
        the events: ``event_id`` makes a retried call count once."""
        model = CsatSubmitted if kind == "csat" else NpsSubmitted
        data = validate(model, answer).model_dump(mode="json")
        event = {"id": event_id, "type": f"{kind}_submitted", "source": "surveys", "data": data}
        return {"recorded": bool(self._write(lambda session: facts.ingest(session, [event], self.settings)))}


def _record_id(value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
        raise NotFound(f"There is no saved report {value}.", code="saved_report_not_found")
    return value


def _set_labelled(gauge, values):
    """Replace every series of ``gauge`` with ``values`` (label tuple -> value): a team with nothing open drops."""
    gauge.clear()
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
