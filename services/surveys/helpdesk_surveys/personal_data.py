"""What the surveys service holds about a person (their CSAT and NPS surveys: address, ratings, comments),
exported and erased on request. Plain functions of a session.

Erasing keeps the ratings and scores (reports count them; without address, comment or contact they say
nothing about anyone) and removes the address, the contact id and the comments. The erased tickets' numbers
are kept: a resolution announced before the erasure and handled after it asks nobody."""
from sqlalchemy import or_, select, update

from .models import ErasedTicket, NpsSurvey, Survey


def _iso(moment):
    return moment.isoformat() if moment is not None else None


def _csat(emails, numbers, contact_id):
    found = or_(Survey.email.in_(emails), Survey.ticket_number.in_(numbers))
    return or_(found, Survey.contact_id == contact_id) if contact_id else found


def _nps(emails, contact_id):
    return or_(NpsSurvey.email.in_(emails), NpsSurvey.contact_id == contact_id) if contact_id \
        else NpsSurvey.email.in_(emails)


def export(session, emails, numbers, contact_id=None):
    emails = sorted({e.lower() for e in emails})
    return {
        "csat": [{"ticket_number": s.ticket_number, "email": s.email, "asked_at": _iso(s.asked_at),
                  "rating": s.rating, "comment": s.comment, "answered_at": _iso(s.answered_at)}
                 for s in session.scalars(select(Survey).where(_csat(emails, numbers, contact_id))
                                          .order_by(Survey.asked_at))],
        "nps": [{"email": s.email, "asked_at": _iso(s.asked_at), "score": s.score, "comment": s.comment,
                 "answered_at": _iso(s.answered_at)}
                for s in session.scalars(select(NpsSurvey).where(_nps(emails, contact_id)).order_by(NpsSurvey.asked_at))],
    }


def erased(session, number):
    return session.get(ErasedTicket, number) is not None


def erase(session, emails, numbers, contact_id=None):
    emails = sorted({e.lower() for e in emails})
    known = set(session.scalars(select(ErasedTicket.ticket_number).where(ErasedTicket.ticket_number.in_(numbers))))
    session.add_all([ErasedTicket(ticket_number=number) for number in dict.fromkeys(numbers) if number not in known])
    csat = session.execute(update(Survey).where(_csat(emails, numbers, contact_id))
                           .values(email="", comment=None, contact_id=None)
                           .execution_options(synchronize_session=False)).rowcount
    nps = session.execute(update(NpsSurvey).where(_nps(emails, contact_id))
                          .values(email="", comment=None, contact_id=None)
                          .execution_options(synchronize_session=False)).rowcount
    return {"csat": csat, "nps": nps}
