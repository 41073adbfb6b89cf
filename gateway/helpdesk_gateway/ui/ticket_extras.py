"""The ticket page's further facts and the actions that need them: the requester's contact (other
identifiers, other tickets), the knowledge base's suggestions, attachments; escalating with a reason and
turning a solved ticket into a draft article.

Each part asks the same service calls as its REST route (``GET /api/v1/contacts/{id}``, ``GET .../tickets``
by requester, ``GET .../tickets/{n}/suggestions``, ``GET .../tickets/{n}/attachments``, ``POST
.../escalations``, ``POST .../article-draft``), with the person's viewer; a part whose service is down or
refuses is left out of the page rather than failing it.
"""
import logging

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.routing import Escalation
from helpdesk_common.errors import HelpdeskError

from ..api import services, viewer
from ..api.attachments import attachment_response, read_attachment
from ..api.tickets import read_messages, read_ticket
from .workspace import bp

log = logging.getLogger(__name__)


def _optional(what, answer, default):
    """An optional part's answer, or ``default`` when its call failed (the page is shown without it)."""
    if isinstance(answer, HelpdeskError):
        log.info("ticket page without %s: %s", what, answer.code)
        return default
    return answer


def context(ticket, reads):
    """``reads``: what the page asked in its one round (``workspace._ticket_reads``)."""
    suggestions = _optional("suggestions", reads.get("suggestions", {"items": []}), {"items": []})
    teams = _optional("teams", reads.get("teams", []), [])
    # the customer's rating (the surveys service's; the call GET /tickets/{number}/satisfaction makes)
    satisfaction = _optional("satisfaction", reads.get("satisfaction"), None)
    return {"contact": reads.get("contact"), "other_tickets": reads.get("other_tickets", []),
            "suggestions": suggestions["items"], "attachments": _optional("attachments", reads.get("attachments", []), []),
            "teams": [team["name"] for team in teams], "satisfaction": satisfaction,
            "kb_base": request.host_url + "api/v1/kb/articles/"}


@bp.post("/tickets/<number>/escalations")
def escalate(number):
    body = {"reason": request.form.get("reason", "").strip()}
    if request.form.get("to_team"):
        body["to_team"] = request.form["to_team"]
    if not body["reason"]:
        flash(_("Say why the ticket is escalated."), "error")
        return redirect(url_for(".ticket", number=number))
    try:
        validate(Escalation, body)
        services().call("routing", "escalate_ticket", number, body, viewer())
    except HelpdeskError as error:
        if error.status >= 500:
            raise
        flash(_("The ticket could not be escalated: %(reason)s", reason=error.message), "error")
        return redirect(url_for(".ticket", number=number))
    flash(_("Ticket %(number)s escalated.", number=number), "success")
    return redirect(url_for(".ticket", number=number))


@bp.post("/tickets/<number>/article-draft")
def article_draft(number):
    ticket, who = read_ticket(number), viewer()
    try:
        article = services().call("kb_search", "draft_from_ticket", ticket, read_messages(number), who,
                                  ticket.get("language"))
    except HelpdeskError as error:
        if error.status >= 500:
            raise
        flash(_("No article could be made from this ticket: %(reason)s", reason=error.message), "error")
        return redirect(url_for(".ticket", number=number))
    flash(_("Draft article %(id)s made from this ticket: review and publish it in the knowledge base.",
            id=article["id"]), "success")
    return redirect(url_for(".ticket", number=number))


@bp.app_template_global()
def clock_text(remaining, breached, met_at=None):
    """One SLA clock in words: met, breached, or the business time left."""
    if met_at and not breached:
        return _("Met")
    if remaining is None:
        return _("Met") if not breached else _("Breached")
    hours = abs(remaining) / 3600
    if breached or remaining < 0:
        return _("Breached (%(hours).1f business hours over)", hours=hours) if remaining < 0 else _("Breached")
    return _("%(hours).1f business hours left", hours=hours)


@bp.get("/tickets/<number>/attachments/<int:attachment_id>")
def attachment(number, attachment_id):
    """The same download as the REST route, for the signed-in person."""
    return attachment_response(read_attachment(number, attachment_id))
