"""Canned replies (macros), as plain functions of a session: shared ones (admins and supervisors make them;
the gateway maps a supervisor to the admin role) and each agent's own; filled in for a ticket from the
ticket itself.

The tickets service owns them because what they hold is a ticket's reply and its status or priority: the
statuses are this service's workflow (checked when the reply is made, not when it is sent), and the
placeholders are filled from the ticket (requester, number, subject). Only the agent's display name comes
from the caller (the gateway knows people's names; this service knows actors).
"""
import re

from sqlalchemy import or_, select

from helpdesk_common.errors import Forbidden, NotFound, ValidationFailed
from helpdesk_common.database import utcnow

from .domain import STAFF, find_ticket, iso
from .exceptions import unknown_status
from .models import CannedReply

PLACEHOLDERS = ("customer_name", "customer_email", "ticket_number", "ticket_subject", "agent_name")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z_]+)\s*\}\}")


def _staff_only(viewer):
    if viewer.role not in STAFF:
        raise Forbidden("Canned replies are for agents only.", code="agents_only")


def not_found(reply_id):
    return NotFound(f"There is no canned reply {reply_id} (or it is another agent's own).",
                    code="canned_reply_not_found")


def view(reply):
    return {"id": reply.id, "title": reply.title, "body": reply.body, "shared": reply.owner is None,
            "owner": reply.owner, "status": reply.status, "priority": reply.priority,
            "created_at": iso(reply.created_at)}


def check_placeholders(body):
    unknown = sorted({name for name in _PLACEHOLDER.findall(body) if name not in PLACEHOLDERS})
    if unknown:
        raise ValidationFailed(
            f"Unknown placeholders: {', '.join(unknown)}. Use {', '.join('{{' + p + '}}' for p in PLACEHOLDERS)}.",
            code="unknown_placeholder", details=[{"field": "body", "code": "unknown_placeholder",
                                                  "message": name} for name in unknown])


def create(session, command, viewer, workflow, now=None):
    _staff_only(viewer)
    if command.shared and viewer.role not in ("admin", "system"):
        raise Forbidden("Only admins and supervisors make shared canned replies; make it your own instead.",
                        code="admins_only")
    check_placeholders(command.body)
    if command.status is not None and command.status not in workflow.statuses:
        raise unknown_status(command.status, workflow.statuses)
    reply = CannedReply(title=command.title, body=command.body, owner=None if command.shared else viewer.actor,
                        status=command.status, priority=command.priority, created_by=viewer.actor,
                        created_at=now or utcnow())
    session.add(reply)
    session.flush()
    return view(reply)


def _usable(viewer):
    """Shared replies and the viewer's own."""
    return or_(CannedReply.owner.is_(None), CannedReply.owner == viewer.actor)


def list_for(session, viewer):
    """The replies this agent may use: shared ones and their own, by title."""
    _staff_only(viewer)
    return [view(r) for r in session.scalars(select(CannedReply).where(_usable(viewer))
                                             .order_by(CannedReply.title, CannedReply.id))]


def _get(session, reply_id, viewer):
    reply = session.scalar(select(CannedReply).where(CannedReply.id == reply_id, _usable(viewer)))
    if reply is None:
        raise not_found(reply_id)
    return reply


def delete(session, reply_id, viewer):
    """Delete a shared reply (admins and supervisors) or one's own."""
    _staff_only(viewer)
    reply = _get(session, reply_id, viewer)
    if reply.owner is None and viewer.role not in ("admin", "system"):
        raise Forbidden("Only admins and supervisors delete shared canned replies.", code="admins_only")
    session.delete(reply)
    return {"id": reply_id, "deleted": True}


def fill(body, values):
    """``body`` with each placeholder replaced by its value (an empty one stays empty); plain text."""
    return _PLACEHOLDER.sub(lambda match: str(values.get(match.group(1), match.group(0)) or ""), body)


def render(session, reply_id, number, viewer, agent_name=None):
    """The reply filled in for ticket ``number`` (which the viewer must be able to see)."""
    _staff_only(viewer)
    reply = _get(session, reply_id, viewer)
    ticket = find_ticket(session, number, viewer)
    requester = ticket.requester
    customer_name = (requester.name if requester is not None and requester.name else None) or ticket.requester_name
    values = {"customer_name": customer_name or ticket.requester_email or "",
              "customer_email": ticket.requester_email or (requester.email if requester is not None else ""),
              "ticket_number": ticket.number, "ticket_subject": ticket.subject,
              "agent_name": agent_name or viewer.actor}
    return {"id": reply.id, "title": reply.title, "body": fill(reply.body, values), "status": reply.status,
            "priority": reply.priority}
