"""Net Promoter Score as plain rules: a periodic survey (0-10 and why) to customers with a ticket resolved in
the last interval, at most once per customer (address) per interval.

Who had a resolution is what this service already knows: the CSAT surveys it opened (one per ticket
resolved on a mail channel). ``due`` finds the addresses with such a survey asked within the interval and no
NPS survey asked within it, and opens one for each. The service calls it for the customer of each
resolution (after the CSAT survey), so a customer is asked at their first resolution of each interval, and
for every address from a timer (``NPS_SWEEP_SECONDS``), so one not asked at a resolution is asked within
the interval anyway. Several replicas: a survey's id is derived from the address and the interval it falls
in (``survey_id``), so two replicas opening the same one collide on the key and one of them fails (and
retries at its next sweep); mails are claimed (``claim_unmailed``: a conditional UPDATE) before they are
sent, so no survey is mailed twice. Links are
signed as CSAT links are (``domain.sign``); an answer is an ``nps_submitted`` event, a later answer replaces
the earlier one. Functions of a session with an explicit ``now``.
"""
import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from helpdesk_common.errors import ValidationFailed
from helpdesk_common.events import new_event
from helpdesk_common.outbox import stage

from .domain import not_found, sign
from .models import NpsSurvey, Outbox, Survey
from .texts import NPS_MAIL

SWEEP_LIMIT = 500  # addresses opened per sweep: a large backlog is worked off over several sweeps
NAMESPACE = uuid.UUID("5b0f6c2e-6d0b-4f55-9a53-1c1f2d7e8a10")


def survey_id(email, now, interval_seconds):
    """The id of ``email``'s survey for the interval ``now`` falls in: the same on every replica."""
    bucket = int(now.timestamp() // interval_seconds)
    return str(uuid.uuid5(NAMESPACE, f"{email}|{bucket}"))


def due(session, interval_seconds, now, email=None, channels=None):
    """Open an NPS survey for every address due one (or for ``email`` only; with ``channels``, only customers
    of tickets on those channels); returns the new surveys."""
    since = now - timedelta(seconds=interval_seconds)
    asked = select(NpsSurvey.email).where(NpsSurvey.asked_at > since)
    query = (select(Survey.email, func.max(Survey.language), func.max(Survey.contact_id))
             .where(Survey.asked_at > since, Survey.email.not_in(asked)))
    if email is not None:
        query = query.where(Survey.email == email)
    if channels is not None:
        query = query.where(Survey.channel.in_(sorted(channels)))
    rows = session.execute(query.group_by(Survey.email).order_by(Survey.email).limit(SWEEP_LIMIT)).all()
    opened = [NpsSurvey(id=survey_id(email, now, interval_seconds), email=email, language=language or "en", contact_id=contact_id,
                        asked_at=now) for email, language, contact_id in rows]
    session.add_all(opened)
    session.flush()
    return opened


def claim_unmailed(session, now, email=None, limit=SWEEP_LIMIT):
    """The surveys not mailed yet (of ``email``, or all), each claimed for this caller by setting
    ``mailed_at`` only where it is still empty: of two replicas, one mails it. A caller whose mail fails gives
    it back (``mailed_at`` None again)."""
    query = select(NpsSurvey.id).where(NpsSurvey.mailed_at.is_(None)).order_by(NpsSurvey.asked_at).limit(limit)
    if email is not None:
        query = query.where(NpsSurvey.email == email)
    claimed = []
    for found in list(session.scalars(query)):
        taken = session.execute(update(NpsSurvey).where(NpsSurvey.id == found, NpsSurvey.mailed_at.is_(None))
                                .values(mailed_at=now).execution_options(synchronize_session=False)).rowcount
        if taken == 1:
            claimed.append(session.get(NpsSurvey, found))
    return claimed


def unmailed(session, email):
    return list(session.scalars(select(NpsSurvey).where(NpsSurvey.email == email, NpsSurvey.mailed_at.is_(None))))


def mail(public_url, key, survey):
    texts = NPS_MAIL[survey.language]
    link = f"{public_url.rstrip('/')}/help/recommend/{sign(key, survey.id)}"
    scores = "\n".join(f"  {score}: {link}?score={score}" for score in range(10, -1, -1))
    return {"to": survey.email, "subject": texts["subject"], "body": texts["body"].format(scores=scores),
            "language": survey.language}


def answer(session, survey_id, score, comment, now, correlation_id=None):
    if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score <= 10:
        raise ValidationFailed("score must be a whole number from 0 to 10.",
                               details=[{"field": "score", "code": "out_of_range", "message": "0 to 10"}])
    if comment is not None and (not isinstance(comment, str) or len(comment) > 5000):
        raise ValidationFailed("comment must be text of at most 5,000 characters.",
                               details=[{"field": "comment", "code": "too_long", "message": "at most 5000"}])
    survey = session.get(NpsSurvey, survey_id, with_for_update=True)
    if survey is None:
        raise not_found()
    replaces = survey.answer_id
    survey.score = score
    if comment is not None:  # a later one-click score keeps the "why" written before
        survey.comment = comment.strip() or None
    survey.answer_id, survey.answered_at = str(uuid.uuid4()), now
    stage(session, Outbox, new_event("nps_submitted", {
        "survey_id": survey.id, "answer_id": survey.answer_id, "replaces": replaces, "contact_id": survey.contact_id,
        "score": score, "comment": survey.comment, "language": survey.language, "submitted_at": now},
        correlation_id=correlation_id))
    return view(survey)


def view(survey):
    return {"score": survey.score, "comment": survey.comment, "language": survey.language,
            "answered_at": survey.answered_at.isoformat() if survey.answered_at else None}
