"""The agent workspace: ticket lists, the ticket page, replies and notes, status, priority, take and assign.

Each view calls the gateway functions the REST routes call (``api.tickets``, ``api.routing``) with the
signed-in person's viewer; the services decide what the person may see and do, as for a token.
"""
import time

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from helpdesk_common.contracts import MAX_RECORD_ID, validate
from helpdesk_common.contracts.tickets import TicketQuery
from helpdesk_common.errors import HelpdeskError, ValidationFailed

from .. import accounts
from ..api import services, viewer
from ..api.routing import read_agents
from ..api.tickets import change_ticket, post_message
from . import live

bp = Blueprint("ui_workspace", __name__, url_prefix="/workspace", template_folder="templates")

VIEWS = ("mine", "team", "unassigned", "sla_at_risk", "sla_breached", "all")  # TicketQuery's views
OLD_VIEWS = {"queue": "unassigned"}  # addresses people may have kept from before
PRIORITIES = ("low", "normal", "high", "urgent")
CHANNELS = ("api", "email", "web", "chat", "phone", "social")
SORTS = ("updated", "created", "priority", "sla_due")
PAGE = 25


@bp.before_request
def signed_in_only():
    if g.get("account") is None:
        return redirect(url_for("ui_signin.sign_in_form", next=request.full_path.rstrip("?")))
    return None


def _filters():
    """The list's filters and sort from the query string, as TicketQuery fields (empty or unknown ones left
    out: a stale link shows the list rather than an error)."""
    wanted = {name: request.args.get(name, "").strip()
              for name in ("status", "priority", "team", "channel", "tag", "text", "sort")}
    for name, allowed in (("priority", PRIORITIES), ("channel", CHANNELS), ("sort", SORTS)):
        if wanted[name] not in allowed:
            wanted[name] = ""
    found = {name: value for name, value in wanted.items() if value}
    organisation = request.args.get("organisation", "").strip()
    if organisation.isascii() and organisation.isdigit() and 0 < int(organisation) <= MAX_RECORD_ID:
        found["organisation"] = int(organisation)
    return found


def _me():
    return g.identity.actor if g.account.agent_id else None


def _list_reads(view, filters, cursor):
    """What a list page shows, asked in one round (``RpcPool.gather``): the page of tickets and the counts
    (what ``GET /tickets`` and ``GET /tickets/counts`` answer, in one call, with the person's viewer: the
    service applies their limits), the workflow, teams and agents. The last change first unless another sort is
    asked."""
    query = {"limit": PAGE, "view": view, "sort": "updated", **filters}
    if cursor:
        query["cursor"] = cursor
    validate(TicketQuery, query)  # a tag that is no tag: refused here, as the REST route would
    me = viewer()
    # list and counts in one call (``get_ticket_list_page``: the same functions, one session), since the
    # tickets service would answer the two one after another anyway
    calls = [("tickets", "get_ticket_list_page", query, me), ("routing", "list_teams"), ("routing", "list_agents"),
             ("tickets", "find_organisations", {"limit": 100}, me)]
    workflow = _known_workflow()
    answers = services().gather(calls + ([] if workflow else [("tickets", "get_workflow")]))
    if not workflow:
        workflow = answers[-1]
        current_app.extensions["helpdesk.ui.workflow"] = (time.monotonic(), workflow)
    tickets, teams, agents, organisations = answers[:4]
    return tickets["page"], tickets["counts"], workflow, teams, agents, organisations["items"]


WORKFLOW_SECONDS = 60


def _known_workflow():
    """The workflow as this process last read it, for a minute: it is the tickets service's configuration,
    read when that service starts, so a list page need not ask for it each time (the SQLite-backed
    service answers its calls one after another: one call fewer is time off every page)."""
    known = current_app.extensions.get("helpdesk.ui.workflow")
    if known is not None and time.monotonic() - known[0] < WORKFLOW_SECONDS:
        return known[1]
    return None


def _my_teams():
    """The teams of the person's routing agent (an agent's view is limited to them)."""
    return list(g.identity.teams)


def _names(agents=None):
    """People's names by how tickets and history name them ("agent-7", "account-3"), not their ids."""
    names = accounts.display_names(current_app.extensions["helpdesk.db"])
    names.update((agent["assignee"], agent["name"]) for agent in (read_agents() if agents is None else agents))
    return names


def _views():
    """The lists this person has: "my teams" only for agents limited to teams, "mine" for agents."""
    return [view for view in VIEWS if (view != "team" or _my_teams()) and (view != "mine" or _me())]


def _list_context():
    view = request.args.get("view", "")
    view = OLD_VIEWS.get(view, view)
    if view not in _views():
        view = "mine" if _me() else "all"
    filters = _filters()
    cursor = request.args.get("cursor") or None
    try:
        page, counts, workflow, teams, agents, organisations = _list_reads(view, filters, cursor)
    except ValidationFailed:
        abort(400)  # a tag that is no tag, a cursor from another sort: the error page says what to do
    return {"view": view, "filters": filters, "tickets": page["items"], "next_cursor": page["next_cursor"],
            "cursor": cursor, "counts": counts, "statuses": _statuses(workflow), "names": _names(agents),
            "teams": [team["name"] for team in teams], "views": _views(), "organisations": organisations}


@bp.get("/")
def home():
    return redirect(url_for(".tickets"))


@bp.get("/tickets")
def tickets():
    return render_template("workspace/tickets.html", priorities=PRIORITIES, channels=CHANNELS, sorts=SORTS,
                           **_list_context())


@bp.get("/tickets/rows")
def ticket_rows():
    """The list's rows and counts alone: what the live list fetches when the stream says something changed."""
    return render_template("workspace/_rows.html", **_list_context())


TICKET_PARTS_NEEDED = ("page", "agents", "workflow")


def _ticket_reads(number, parts=None):
    """What the ticket page shows, asked in one round (``RpcPool.gather``): the tickets service's part in one
    call (``get_ticket_page``: the ticket, conversation, history, links, followers, canned replies, the
    requester's contact and other tickets, read by the same functions as the single REST reads, with the
    person's viewer), the agents and teams, the knowledge base's suggestions, the attachments (and the
    workflow, unless this process knows it). ``parts``: only these (the live refresh). The ticket's own
    error (404 for one the person may not see) comes first; the optional parts (suggestions, attachments,
    teams) are left out of the page when their service is down or refuses."""
    me = viewer()
    calls = {"page": ("tickets", "get_ticket_page", number, me), "agents": ("routing", "list_agents"),
             "teams": ("routing", "list_teams"), "suggestions": ("kb_search", "suggestions_for_ticket", number, me),
             "attachments": ("intake", "list_attachments", number),
             "satisfaction": ("surveys", "ticket_satisfaction", number)}
    if parts is not None:
        calls = {name: call for name, call in calls.items() if name in parts}
    workflow = _known_workflow() if parts is None else None
    if parts is None and workflow is None:
        calls["workflow"] = ("tickets", "get_workflow")
    answers = dict(zip(calls, services().gather(list(calls.values()), return_errors=True)))
    for name in TICKET_PARTS_NEEDED:
        if isinstance(answers.get(name), HelpdeskError):
            raise answers[name]
    if "workflow" in answers:
        current_app.extensions["helpdesk.ui.workflow"] = (time.monotonic(), answers["workflow"])
    elif parts is None:
        answers["workflow"] = workflow
    return {**answers.pop("page"), **answers}


@bp.get("/tickets/<number>")
def ticket(number):
    from . import ticket_actions  # the page's further actions (links, merge, ...) live in their own module

    reads = _ticket_reads(number)
    ticket, workflow, agents = reads["ticket"], reads["workflow"], reads["agents"]
    return render_template("workspace/ticket.html", ticket=ticket, messages=reads["messages"],
                           names=_names(agents),
                           history=reads["history"], next_statuses=_next_statuses(workflow, ticket["status"]),
                           statuses=_statuses(workflow), priorities=PRIORITIES, me=_me(),
                           agents=agents if g.identity.role == "admin" else [],  # agents take; admins assign
                           **ticket_actions.context(ticket, reads))


@bp.get("/tickets/<number>/parts")
def ticket_parts(number):
    """The open ticket page's conversation, details and history: what it fetches when the ticket changed
    (in one round, as the page itself)."""
    reads = _ticket_reads(number, parts=("page", "agents"))
    return render_template("workspace/_parts.html", ticket=reads["ticket"], messages=reads["messages"],
                           history=reads["history"], names=_names(reads["agents"]))


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
