"""What the analytics read model holds about a person's tickets and answers, for an export on request.

Its ticket facts carry no name, address or text (channel, priority, team, times: what reports count), so an
erasure leaves them as they are; survey comments and the surge detector's copy of a ticket's subject and text
are the only texts, removed on ``contact_erased`` (``facts.erase_comments``, ``facts.erase_wording``)."""
from sqlalchemy import or_, select

from .models import SurveyAnswer, TicketFact
from .surge_models import SurgeTicket


def _iso(moment):
    return moment.isoformat() if moment is not None else None


def export(session, numbers, contact_id=None):
    found = SurveyAnswer.ticket.in_(numbers)
    if contact_id:
        found = or_(found, SurveyAnswer.contact_id == contact_id)
    facts = session.scalars(select(TicketFact).where(TicketFact.number.in_(numbers)).order_by(TicketFact.number))
    return {
        "ticket_facts": [{"number": f.number, "status": f.status, "channel": f.channel, "priority": f.priority,
                          "team": f.team, "agent": f.agent, "first_response_seconds": f.first_response_seconds,
                          "resolution_seconds": f.resolution_seconds, "reopens": f.reopens,
                          "escalations": f.escalations} for f in facts],
        "survey_answers": [{"kind": a.kind, "ticket": a.ticket, "score": a.score, "comment": a.comment,
                            "submitted_at": _iso(a.submitted_at)}
                           for a in session.scalars(select(SurveyAnswer).where(found).order_by(SurveyAnswer.submitted_at))],
        "surge_tickets": [{"number": t.number, "subject": t.subject, "text": t.text}
                          for t in session.scalars(select(SurgeTicket).where(SurgeTicket.number.in_(numbers))
                                                   .order_by(SurgeTicket.number))],
    }
