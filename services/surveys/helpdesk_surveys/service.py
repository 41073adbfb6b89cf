"""The surveys nameko service: thin entrypoints over ``domain``.

Why a service of its own (and not intake or analytics): the catalogue already names ``surveys`` as the
source of ``csat_submitted``/``nps_submitted``; a survey is state with its own life (asked once, answered,
changed) that analytics must only learn from events (it is rebuildable from them, so it cannot be their
writer), and intake is the channels' adapter, not the owner of customers' opinions. It sends nothing itself:
the survey mail goes through intake's outgoing-mail queue (``send_account_mail`` over RPC), like every mail.

- on ``status_changed`` to resolved: open the ticket's survey once, then mail it (email and web tickets) or
  write it as a public message with the link on the ticket (chat, social, phone: ``tickets.add_message``);
  a failure is retried with the event (the survey row is kept, ``mailed_at`` says whether it went out).
- ``answer_csat(token, rating, comment)``: the portal's one-click link and comment form (the token is the
  signed link); ``survey_for_link(token)``: what the page shows; ``ticket_satisfaction(number)``: for agents
  (the gateway checks the agent may see the ticket first).
"""
import logging

from nameko.dependency_providers import DependencyProvider
from helpdesk_common.adapters.queues import RpcProxy, rpc
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from helpdesk_common.adapters.consumer import reliable_handler
from helpdesk_common.adapters.database import Database
from helpdesk_common.adapters.metrics import EntrypointMetrics
from helpdesk_common.adapters.relay import OutboxRelay
from helpdesk_common.adapters.timers import config_timer
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
SURVEYS_VIEWER = {"actor": "surveys", "role": "system"}  # who writes the survey message on a ticket


class SurveySettings(DependencyProvider):
    def setup(self):
        config = self.container.config
        channels = config.get("CSAT_MAIL_CHANNELS") or "email,web"
        messaged = config.get("CSAT_MESSAGE_CHANNELS")
        messaged = "chat,social,phone" if messaged is None else messaged
        self.settings = domain.Settings(
            message_channels=frozenset(c.strip() for c in str(messaged).split(",") if c.strip()),
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
    tickets = RpcProxy("tickets")

    @reliable_handler("tickets", "status_changed")
    def on_status_changed(self, event):
        ticket, to_status = event["data"]["ticket"], event["data"]["to_status"]
        how = domain.how_to_ask(self.settings, ticket, to_status)
        if how is None:
            return
        with self.db() as session:
            if personal_data.erased(session, ticket["number"]):  # the event was on its way: ask nobody
                return
        key = domain.secret(self.db)  # before the transaction: SQLite allows one writer at a time
        with self.db.begin() as session:
            survey = domain.open_survey(session, ticket, utcnow())
            # Asked already: a repeat of the event, or a later resolution (asked once per ticket).
            asked = survey.mailed_at is not None
            mail = domain.survey_mail(self.settings, key, survey, ticket["subject"]) if how == "mail" else None
            message = domain.survey_message(self.settings, key, survey) if how == "message" else None
            survey_id = survey.id
        if not asked:
            # Either raises and the event is retried, the survey sent then; the message's idempotency key makes
            # a retry after a lost answer one message, not two.
            if mail is not None:
                self.intake.send_account_mail(mail)
            else:
                self.tickets.add_message(ticket["number"], message, SURVEYS_VIEWER, f"csat:{survey_id}")
            with self.db.begin() as session:
                session.get(Survey, survey_id).mailed_at = utcnow()
        if how == "mail" or ticket.get("channel") == "chat":  # phone and social addresses may be stand-ins
            self._ask_nps(ticket["requester"]["email"], key)

    def _ask_nps(self, email, key):
        """NPS for the customer of a resolution, unless asked within the interval (0: NPS is off)."""
        interval = self.settings.nps_interval
        if interval <= 0 or not email:  # no address: the customer's personal data was erased
            return
        with self.db.begin() as session:
            nps.due(session, interval, utcnow(), email=email)
        self._mail_nps(key, email)

    @config_timer("NPS_SWEEP_SECONDS", 3600.0)
    def sweep_nps(self):
        """Every customer with a resolution in the interval and no NPS survey in it is asked now: the periodic
        survey, beside the one asked at a resolution. Mail channels and chat only (phone and social tickets'
        addresses may stand in for a number or a handle)."""
        interval = self.settings.nps_interval
        if interval <= 0:
            return
        key = domain.secret(self.db)
        try:
            with self.db.begin() as session:
                nps.due(session, interval, utcnow(), channels=self.settings.mail_channels | {"chat"})
        except IntegrityError:
            log.info("another replica opened these NPS surveys first; mailing what is open")
        self._mail_nps(key)

    def _mail_nps(self, key, email=None):
        with self.db.begin() as session:
            claimed = [(survey.id, nps.mail(self.settings.public_url, key, survey))
                       for survey in nps.claim_unmailed(session, utcnow(), email=email)]
        for survey_id, mail in claimed:
            try:
                self.intake.send_account_mail(mail)
            except Exception:
                with self.db.begin() as session:  # given back: the next sweep (or event retry) mails it
                    session.get(NpsSurvey, survey_id).mailed_at = None
                raise

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
