"""The agent workspace: ticket lists, the ticket page, replies and notes, status, priority, take and assign.

Each view calls the gateway functions the REST routes call (``api.tickets``, ``api.routing``) with the
signed-in person's viewer; the services decide what the person may see and do, as for a token.
"""
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from helpdesk_common.errors import HelpdeskError, ValidationFailed

from .. import accounts
from ..api.routing import read_agents, read_queue, read_teams
from ..api.tickets import (change_ticket, find_tickets, post_message, read_history, read_messages, read_ticket,
                           read_workflow)
from . import live

bp = Blueprint("ui_workspace", __name__, url_prefix="/workspace", template_folder="templates")

VIEWS = ("mine", "team", "queue", "all")
PRIORITIES = ("low", "normal", "high", "urgent")
PAGE = 25
COUNT_CAP = 100  # counts in the sidebar stop at 100 ("100+"): the services have no count call yet


@bp.before_request
def signed_in_only():
    if g.get("account") is None:
        return redirect(url_for("ui_signin.sign_in_form", next=request.full_path.rstrip("?")))
    return None


def _filters():
    """The list's filters from the query string, as TicketQuery fields (empty ones left out)."""
    wanted = {name: request.args.get(name, "").strip() for name in ("status", "priority", "team", "text")}
    if wanted["priority"] and wanted["priority"] not in PRIORITIES:
        wanted["priority"] = ""
    return {name: value for name, value in wanted.items() if value}


def _me():
    return g.identity.actor if g.account.agent_id else None


def _page(view, filters, cursor):
    """(tickets, next cursor) of one list view."""
    if view == "queue":
        # Waiting tickets come from routing's queue (the tickets service cannot filter "no assignee");
        # each is read through the tickets service, which checks the viewer again.
        waiting = read_queue({"limit": PAGE, **({"team": filters["team"]} if "team" in filters else {})})
        tickets = []
        for entry in waiting:
            try:
                tickets.append(read_ticket(entry["number"]))
            except HelpdeskError:
                continue  # gone or out of sight since routing listed it
        return [t for t in tickets if _matches(t, filters)], None
    query = {"limit": PAGE, **filters}
    if view == "team":
        if not _my_teams():
            return [], None
        query.setdefault("team", _my_teams()[0])
    if view == "mine":
        if _me() is None:
            return [], None
        query["assignee"] = _me()
    if cursor:
        query["cursor"] = cursor
    page = find_tickets(query)
    return page["items"], page["next_cursor"]


def _matches(ticket, filters):
    text = filters.get("text", "").lower()
    return (all(ticket.get(name) == filters[name] for name in ("status", "priority", "team") if name in filters)
            and (not text or text in ticket["subject"].lower() or text in ticket["description"].lower()))


def _my_teams():
    """The teams of the person's routing agent (an agent's view is limited to them)."""
    return list(g.identity.teams)


def _names(agents=None):
    """People's names by how tickets and history name them ("agent-7", "account-3"), not their ids."""
    names = accounts.display_names(current_app.extensions["helpdesk.db"])
    names.update((agent["assignee"], agent["name"]) for agent in (read_agents() if agents is None else agents))
    return names


def _counts():
    def capped(query):
        page = find_tickets({"limit": COUNT_CAP, **query})
        return f"{COUNT_CAP}+" if page["next_cursor"] else str(len(page["items"]))

    counts = {"all": capped({}), "queue": str(len(read_queue({"limit": 500})))}
    counts["mine"] = capped({"assignee": _me()}) if _me() else "0"
    counts["team"] = capped({"team": _my_teams()[0]}) if _my_teams() else "0"
    return counts


def _views():
    """The lists this person has: "my team" only for agents limited to teams."""
    return [view for view in VIEWS if view != "team" or _my_teams()]


def _list_context():
    view = request.args.get("view", "mine" if _me() else "all")
    if view not in _views():
        view = "all"
    filters = _filters()
    cursor = request.args.get("cursor") or None
    try:
        tickets, next_cursor = _page(view, filters, cursor)
    except ValidationFailed:
        abort(400)
    return {"view": view, "filters": filters, "tickets": tickets, "next_cursor": next_cursor, "cursor": cursor}


@bp.get("/")
def home():
    return redirect(url_for(".tickets"))


@bp.get("/tickets")
def tickets():
    context = _list_context()
    workflow = read_workflow()
    teams = read_teams()
    return render_template("workspace/tickets.html", counts=_counts(), statuses=_statuses(workflow), names=_names(),
                           priorities=PRIORITIES, teams=[team["name"] for team in teams], views=_views(), **context)


@bp.get("/tickets/rows")
def ticket_rows():
    """The list's rows and counts alone: what the live list fetches when the stream says something changed."""
    return render_template("workspace/_rows.html", counts=_counts(), views=_views(), names=_names(),
                           **_list_context())


@bp.get("/tickets/<number>")
def ticket(number):
    from . import ticket_actions  # the page's further actions (links, merge, ...) live in their own module

    ticket = read_ticket(number)
    workflow = read_workflow()
    agents = read_agents()
    return render_template("workspace/ticket.html", ticket=ticket, messages=read_messages(number),
                           names=_names(agents),
                           history=read_history(number), next_statuses=_next_statuses(workflow, ticket["status"]),
                           statuses=_statuses(workflow), priorities=PRIORITIES, me=_me(),
                           agents=agents if g.identity.role == "admin" else [],  # agents take; admins assign
                           **ticket_actions.context(ticket))


@bp.get("/tickets/<number>/parts")
def ticket_parts(number):
    """The open ticket page's conversation, details and history: what it fetches when the ticket changed."""
    return render_template("workspace/_parts.html", ticket=read_ticket(number), messages=read_messages(number),
                           history=read_history(number), names=_names())


@bp.post("/tickets/<number>/messages")
def add_message(number):
    visibility = "internal" if request.form.get("visibility") == "internal" else "public"
    body = request.form.get("body", "").strip()
    if not body:
        flash(_("Write a message first."), "error")
        return redirect(url_for(".ticket", number=number))
    post_message(number, {"body": body, "visibility": visibility})
    flash(_("Internal note added.") if visibility == "internal" else _("Reply sent."), "success")
    return redirect(url_for(".ticket", number=number, _anchor="conversation"))


@bp.post("/tickets/<number>/changes")
def change(number):
    """Status, priority, and assignee (take, assign, give back): the PATCH route's path, routing included."""
    changes = {}
    for name in ("status", "priority"):
        value = request.form.get(name)
        if value:
            changes[name] = value
    if "assignee" in request.form:
        assignee = request.form["assignee"]
        if assignee == "me":
            if _me() is None:
                abort(400)
            assignee = _me()
        changes["assignee"] = assignee or None
    if not changes:
        return redirect(url_for(".ticket", number=number))
    change_ticket(number, changes)
    flash(_("Ticket %(number)s changed.", number=number), "success")
    return redirect(url_for(".ticket", number=number))


@bp.get("/live")
def live_stream():
    return live.stream()


def _statuses(workflow):
    return [status["name"] for status in workflow.get("statuses", [])]


def _next_statuses(workflow, current):
    for status in workflow.get("statuses", []):
        if status["name"] == current:
            return status.get("next", [])
    return []
