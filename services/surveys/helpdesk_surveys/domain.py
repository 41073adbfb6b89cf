"""Customer satisfaction (CSAT) as plain rules: who is asked, how a link is signed, how an answer is kept.

- A ticket's customer is asked **once**, when the ticket first reaches ``Settings.csat_status``
  (resolved by default), on a mail channel (email and web: a mail with one-click ratings). A reopened and
  again resolved ticket is not asked again; the survey stays open, so its customer can still change the answer.
- A link is ``<survey id>.<HMAC-SHA256(secret, survey id)>``: signed, so it needs no sign-in, cannot be
  guessed from a ticket number, and can be made again from the survey id alone (a retried mail carries the
  same link). The secret lives in this service's database, made on first use.
- Every answer is a ``csat_submitted`` event (outbox, same transaction); a later answer to the same
  survey replaces the earlier one (``replaces``), as the catalogue's contract says.

No nameko here: functions of a session, with an explicit ``now``.
"""
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from helpdesk_common.errors import NotFound, ValidationFailed
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage

from .models import Outbox, Survey, SurveySecret
from .texts import MAIL, MESSAGE

LANGUAGES = ("en", "nl", "sv")


@dataclass(frozen=True)
class Settings:
    public_url: str = "http://127.0.0.1:8000"
    csat_status: str = "resolved"
    mail_channels: frozenset = frozenset({"email", "web"})
    # Channels whose customer is asked by a message on the ticket (a link), not by a survey mail.
    message_channels: frozenset = frozenset({"chat", "social", "phone"})
    nps_interval: float = 0.0  # seconds; 0: no NPS


def not_found():
    # A plain NotFound with its own code: every caller knows the class (a subclass defined here would not
    # be rebuilt in the gateway, which imports no service).
    return NotFound("This survey link is not valid.", code="survey_not_found")


def secret(sessions):
    """The signing key, made once and shared by every replica through the database."""
    with sessions() as session:
        found = session.get(SurveySecret, "link_key")
        if found is not None:
            return found.value
    try:
        with sessions.begin() as session:
            session.add(SurveySecret(name="link_key", value=secrets.token_urlsafe(48)))
    except IntegrityError:
        pass  # another replica made it first
    with sessions() as session:
        return session.get(SurveySecret, "link_key").value


def sign(key, survey_id):
    return f"{survey_id}.{hmac.new(key.encode(), survey_id.encode(), hashlib.sha256).hexdigest()}"


def survey_id_of(key, token):
    """The survey a token names, or the 404 ``survey_not_found`` when it is not one of ours."""
    survey_id, _, signature = (token or "").partition(".")
    expected = sign(key, survey_id).partition(".")[2]
    if not survey_id or not hmac.compare_digest(expected.encode(), signature.encode()):
        raise not_found()
    return survey_id


def should_ask(settings, ticket, to_status):
    return how_to_ask(settings, ticket, to_status) is not None


def how_to_ask(settings, ticket, to_status):
    """``mail`` (a mail with one-click ratings), ``message`` (a public message on the ticket with the link:
    chat, social and phone customers follow the conversation there, and a social ticket's public messages
    are its replies on the platform), or None (not a resolution, or a channel not asked)."""
    if to_status != settings.csat_status:
        return None
    if ticket.get("channel") in settings.mail_channels:
        # a requester without an address (their personal data was erased) is asked nothing by mail
        return "mail" if ticket["requester"].get("email") else None
    if ticket.get("channel") in settings.message_channels:
        return "message"
    return None


def survey_message(settings, key, survey):
    """The message asking for a rating, as the ticket's public message (``NewMessage`` fields)."""
    link = f"{settings.public_url.rstrip('/')}/help/satisfaction/{sign(key, survey.id)}"
    return {"body": MESSAGE[survey.language].format(number=survey.ticket_number, link=link), "visibility": "public"}


def open_survey(session, ticket, now):
    """The ticket's survey, made now if it has none (one per ticket, whatever the number of resolutions)."""
    found = session.scalar(select(Survey).where(Survey.ticket_number == ticket["number"]))
    if found is not None:
        return found
    language = ticket.get("language") if ticket.get("language") in LANGUAGES else "en"
    survey = Survey(id=str(uuid.uuid4()), ticket_number=ticket["number"], email=ticket["requester"]["email"],
                    language=language, channel=ticket["channel"], team=ticket.get("team"),
                    assignee=ticket.get("assignee"), contact_id=ticket["requester"].get("contact_id"), asked_at=now)
    session.add(survey)
    session.flush()
    return survey


def survey_mail(settings, key, survey, subject):
    """The mail asking for a rating (``AccountMail`` fields for intake's queue), in the ticket's language."""
    texts = MAIL[survey.language]
    link = f"{settings.public_url.rstrip('/')}/help/satisfaction/{sign(key, survey.id)}"
    choices = "\n".join(f"  {rating} – {texts['labels'][rating - 1]}: {link}?rating={rating}"
                        for rating in range(5, 0, -1))
    title = texts["subject"].format(number=survey.ticket_number, subject=subject)[:200]
    return {"to": survey.email, "subject": title,
            "body": texts["body"].format(number=survey.ticket_number, choices=choices), "language": survey.language}


def answer(session, survey_id, rating, comment, now, correlation_id=None):
    """Record an answer (replacing any earlier one) and stage ``csat_submitted``. Returns the survey view.

    ``comment`` None keeps the comment already given (a later one-click rating), "" removes it."""
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise ValidationFailed("rating must be a whole number from 1 to 5.",
                               details=[{"field": "rating", "code": "out_of_range", "message": "1 to 5"}])
    if comment is not None and (not isinstance(comment, str) or len(comment) > 5000):
        raise ValidationFailed("comment must be text of at most 5,000 characters.",
                               details=[{"field": "comment", "code": "too_long", "message": "at most 5000"}])
    survey = session.get(Survey, survey_id, with_for_update=True)
    if survey is None:
        raise not_found()
    replaces = survey.answer_id
    survey.rating = rating
    if comment is not None:  # a one-click rating (no comment) keeps the comment written before; "" clears it
        survey.comment = comment.strip() or None
    survey.answer_id, survey.answered_at = str(uuid.uuid4()), now
    stage(session, Outbox, new_event("csat_submitted", {
        "survey_id": survey.id, "answer_id": survey.answer_id, "replaces": replaces, "ticket": survey.ticket_number,
        "contact_id": survey.contact_id, "rating": rating, "comment": survey.comment, "channel": survey.channel,
        "team": survey.team, "assignee": survey.assignee, "language": survey.language, "submitted_at": now},
        correlation_id=correlation_id, subject=survey.ticket_number))
    return view(survey)


def view(survey):
    iso = lambda moment: moment.isoformat() if moment is not None else None  # noqa: E731
    return {"ticket_number": survey.ticket_number, "asked_at": iso(survey.asked_at), "rating": survey.rating,
            "comment": survey.comment, "answered_at": iso(survey.answered_at), "language": survey.language}


def for_ticket(session, number):
    """The ticket's satisfaction for agents: its survey's view, or nulls when it was never asked."""
    survey = session.scalar(select(Survey).where(Survey.ticket_number == number))
    if survey is None:
        return {"ticket_number": number, "asked_at": None, "rating": None, "comment": None, "answered_at": None,
                "language": None}
    return view(survey)

