"""The ticket page's further actions: link a related ticket, merge a duplicate into another, canned replies.

Views on the workspace's blueprint (signed in, CSRF-checked like its other forms) that call the same
gateway functions as the REST routes (``api.ticket_links``). ``context(ticket)`` is what the ticket page
shows of them.
"""
from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from helpdesk_common.errors import HelpdeskError

from ..api.canned_replies import render_canned_reply
from ..api.ticket_links import link_tickets, merge_tickets
from ..api.tickets import change_ticket, post_message
from . import ticket_extras
from .workspace import bp


def context(ticket, reads):
    """What the ticket page needs for these actions (``reads``: what the page asked in its one round,
    ``workspace._ticket_reads``). ``?canned=<id>``: that canned reply filled in for the reply form (the
    picker works without script: it reloads the page with the text in place)."""
    canned = None
    chosen = request.args.get("canned", "")
    if chosen.isascii() and chosen.isdigit() and len(chosen) < 19:
        try:
            canned = render_canned_reply(int(chosen), ticket["number"])
        except HelpdeskError as error:
            if error.status >= 500:
                raise
            flash(_("That canned reply is not available."), "error")
    return {"links": reads["links"], "canned_replies": reads["canned_replies"], "canned": canned,
            "following": reads["following"], **ticket_extras.context(ticket, reads)}


def _refusal(error, other):
    """A person's words for why a link or merge was refused (the service's codes are stable)."""
    texts = {
        "ticket_not_found": _("There is no ticket %(number)s that you may see.", number=other),
        "same_ticket": _("Choose another ticket: a ticket cannot be linked to or merged into itself."),
        "already_merged": _("This ticket was already merged."),
        "ticket_closed": _("Only open tickets can be merged; reopen the ticket first or choose another."),
    }
    return texts.get(error.code, _("The tickets could not be changed; check the number and try again."))


def _other(field):
    return request.form.get(field, "").strip()


@bp.post("/tickets/<number>/links")
def link(number):
    other = _other("other")
    if not other:
        flash(_("Give the number of the related ticket."), "error")
        return redirect(url_for(".ticket", number=number))
    try:
        link_tickets(number, {"other": other})
    except HelpdeskError as error:
        if error.status >= 500:
            raise
        flash(_refusal(error, other), "error")
        return redirect(url_for(".ticket", number=number))
    flash(_("Ticket %(number)s linked to %(other)s.", number=number, other=other), "success")
    return redirect(url_for(".ticket", number=number, _anchor="links"))


@bp.post("/tickets/<number>/merge")
def merge(number):
    into = _other("into")
    if not into:
        flash(_("Give the number of the ticket to keep."), "error")
        return redirect(url_for(".ticket", number=number))
    try:
        merge_tickets(number, {"into": into})
    except HelpdeskError as error:
        if error.status >= 500:
            raise
        flash(_refusal(error, into), "error")
        return redirect(url_for(".ticket", number=number))
    flash(_("Ticket %(number)s was merged into %(other)s.", number=number, other=into), "success")
    return redirect(url_for(".ticket", number=into))


@bp.post("/tickets/<number>/canned-replies/<int:reply_id>/messages")
def send_canned(number, reply_id):
    """Send a reply written from a canned reply (the agent may have edited it), then set the status and
    priority the canned reply sets: the same two calls as ``POST .../messages`` and ``PATCH`` of the API."""
    visibility = "internal" if request.form.get("visibility") == "internal" else "public"
    body = request.form.get("body", "").strip()
    if not body:
        flash(_("Write a message first."), "error")
        return redirect(url_for(".ticket", number=number, canned=reply_id))
    filled = render_canned_reply(reply_id, number)  # what it sets comes from the service, not the form
    post_message(number, {"body": body, "visibility": visibility})
    changes = {name: filled[name] for name in ("status", "priority") if filled.get(name)}
    if changes:
        try:
            change_ticket(number, changes)
        except HelpdeskError as error:
            if error.status >= 500:
                raise
            flash(_("Reply sent, but the canned reply's status or priority could not be set: %(reason)s",
                    reason=error.message), "error")
            return redirect(url_for(".ticket", number=number, _anchor="conversation"))
    flash(_("Internal note added.") if visibility == "internal" else _("Reply sent."), "success")
    return redirect(url_for(".ticket", number=number, _anchor="conversation"))
