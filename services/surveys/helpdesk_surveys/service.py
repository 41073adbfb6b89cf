"""The surveys nameko service: thin entrypoints over ``domain``.

Why a service of its own (and not intake or analytics): the catalogue already names ``surveys`` as the
source of ``csat_submitted``/``nps_submitted``; a survey is state with its own life (asked once, answered,
changed) that analytics must only learn from events (it is rebuildable from them, so it cannot be their
writer), and intake is the channels' adapter, not the owner of customers' opinions. It sends nothing itself:
the survey mail goes through intake's outgoing-mail queue (``send_account_mail`` over RPC), like every mail.

- on ``status_changed`` to resolved (mail channels): open the ticket's survey once, then mail it; a failed
  mail is retried with the event (the survey row is kept, ``mailed_at`` says whether the mail went out).
- ``answer_csat(token, rating, comment)``: the portal's one-click link and comment form (the token is the
  signed link); ``survey_for_link(token)``: what the page shows; ``ticket_satisfaction(number)``: for agents
  (the gateway checks the agent may see the ticket first).
"""
import logging

from nameko.dependency_providers import DependencyProvider
from nameko.rpc import RpcProxy, rpc
from sqlalchemy import text

from helpdesk_common.adapters.consumer import reliable_handler
from helpdesk_common.adapters.database import Database
from helpdesk_common.adapters.metrics import EntrypointMetrics
from helpdesk_common.adapters.relay import OutboxRelay
from helpdesk_common.contracts import validate
from helpdesk_common.contracts.contacts import PersonalDataQuery
from helpdesk_common.contracts.tickets import Viewer
from helpdesk_common.database import utcnow
from helpdesk_common.errors import EXPECTED_ERRORS, Forbidden, ValidationFailed
from helpdesk_common.inbox import first_delivery
from helpdesk_common.outbox import forget_published

from . import domain, nps, personal_data
from .models import NpsSurvey, Outbox, ProcessedEvent, Survey

log = logging.getLogger(__name__)

DB_URL = "SURVEYS_DB_URL"


class SurveySettings(DependencyProvider):
    def setup(self):
        config = self.container.config
        channels = config.get("CSAT_MAIL_CHANNELS") or "email,web"
        self.settings = domain.Settings(
            public_url=config.get("PUBLIC_URL") or "http://127.0.0.1:8000",
            csat_status=config.get("CSAT_STATUS") or "resolved",
            mail_channels=frozenset(c.strip() for c in str(channels).split(",") if c.strip()),
            nps_interval=float(config.get("NPS_INTERVAL_SECONDS") or 0))

    def get_dependency(self, worker_ctx):
        return self.settings


class SurveysService:
    name = "surveys"

    db = Database(DB_URL)
    outbox = OutboxRelay(Outbox, DB_URL, source="surveys")
    settings = SurveySettings()
    metrics = EntrypointMetrics()
    intake = RpcProxy("intake")

    @reliable_handler("tickets", "status_changed")
    def on_status_changed(self, event):
        ticket, to_status = event["data"]["ticket"], event["data"]["to_status"]
        if not domain.should_ask(self.settings, ticket, to_status):
            return
        with self.db() as session:
            if personal_data.erased(session, ticket["number"]):  # the event was on its way: ask nobody
                return
        key = domain.secret(self.db)  # before the transaction: SQLite allows one writer at a time
        with self.db.begin() as session:
            survey = domain.open_survey(session, ticket, utcnow())
            # Mailed already: a repeat of the event, or a later resolution (asked once per ticket).
            mail = domain.survey_mail(self.settings, key, survey, ticket["subject"]) if survey.mailed_at is None \
                else None
            survey_id = survey.id
        if mail is not None:
            self.intake.send_account_mail(mail)  # raises: the event is retried, the mail sent then
            with self.db.begin() as session:
                session.get(Survey, survey_id).mailed_at = utcnow()
        self._ask_nps(ticket["requester"]["email"], key)

    def _ask_nps(self, email, key):
        """NPS for the customer of a resolution, unless asked within the interval (0: NPS is off)."""
        interval = self.settings.nps_interval
        if interval <= 0 or not email:  # no address: the customer's personal data was erased
            return
        with self.db.begin() as session:
            nps.due(session, interval, utcnow(), email=email)
            waiting = [(survey.id, nps.mail(self.settings.public_url, key, survey))
                       for survey in nps.unmailed(session, email)]
        for survey_id, mail in waiting:
            self.intake.send_account_mail(mail)  # raises: the event is retried, the mail sent then
            with self.db.begin() as session:
                session.get(NpsSurvey, survey_id).mailed_at = utcnow()

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def nps_for_link(self, token):
        survey_id = domain.survey_id_of(domain.secret(self.db), _text(token))
        with self.db() as session:
            survey = session.get(NpsSurvey, survey_id)
            if survey is None:
                raise domain.not_found()
            return nps.view(survey)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def answer_nps(self, token, score, comment=None, correlation_id=None):
        survey_id = domain.survey_id_of(domain.secret(self.db), _text(token))
        with self.db.begin() as session:
            return nps.answer(session, survey_id, score, comment, utcnow(), correlation_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def survey_for_link(self, token):
        survey_id = domain.survey_id_of(domain.secret(self.db), _text(token))
        with self.db() as session:
            survey = session.get(Survey, survey_id)
            if survey is None:
                raise domain.not_found()
            return domain.view(survey)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def answer_csat(self, token, rating, comment=None, correlation_id=None):
        survey_id = domain.survey_id_of(domain.secret(self.db), _text(token))
        with self.db.begin() as session:
            return domain.answer(session, survey_id, rating, comment, utcnow(), correlation_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def ticket_satisfaction(self, number):
        with self.db() as session:
            return domain.for_ticket(session, _text(number))

    # --- personal data ---------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def personal_data(self, query, viewer):
        query, who = validate(PersonalDataQuery, query), validate(Viewer, viewer, prefix="viewer.")
        if who.role not in ("admin", "system"):
            raise Forbidden("Only admins may export a person's data.", code="admins_only")
        with self.db() as session:
            return personal_data.export(session, query.emails, query.ticket_numbers, query.contact_id)

    @reliable_handler("tickets", "contact_erased")
    def on_contact_erased(self, event):
        data = event["data"]
        with self.db.begin() as session:
            if first_delivery(session, ProcessedEvent, event["id"], "surveys.on_contact_erased"):
                personal_data.erase(session, data.get("emails", []), data.get("ticket_numbers", []),
                                    data.get("contact_id"))
                forget_published(session, Outbox)  # relayed answers carried the comments

    @rpc
    def ping(self):
        """For health checks: answers when the service is up and its database reachable."""
        with self.db() as session:
            session.execute(text("SELECT 1"))
        return {"service": self.name, "ok": True}


def _text(value):
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        raise ValidationFailed("Expected a short text.", details=[{"field": "(argument)", "code": "invalid_value"}])
    return value
