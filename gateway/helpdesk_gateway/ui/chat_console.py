"""The live chat console: waiting chats, join one, talk with the customer live, end it; the transcript is
the chat's ticket (intake writes it there, as for the REST API's chats).

Every action makes the RPC its REST route makes (``/api/v1/chats``: ``list_chats``, ``join_chat``,
``post_chat_message``, ``leave_chat``, ``chat_entries``), with the person's viewer, so intake judges a person
exactly as a token (``helpdesk_intake.domain.chat.may_see``).

Live: both pages hold the workspace's one live stream (``ui/live.py``): the chat page's says "new entry"
(``?chat=``, taking a slot of the chat as the chat API's stream does) and the page fetches the transcript,
rendered here as text, so nothing a customer types can become markup; the console's says when a chat
starts waiting, is taken or ends (``?chats=1``), and the lists are fetched again.
"""
from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.chat import ChatPost
from helpdesk_common.errors import Conflict, HelpdeskError

from .. import accounts
from ..api import services, viewer
from ..api.routing import read_agents

bp = Blueprint("ui_chats", __name__, url_prefix="/workspace/chats", template_folder="templates")

STATES = {"waiting": _l("Waiting for an agent"), "active": _l("In progress"), "ended": _l("Ended")}


@bp.app_context_processor
def labels():
    return {"chat_state_label": lambda state: STATES.get(state, state)}


@bp.before_request
def signed_in_only():
    if g.get("account") is None:
        return redirect(url_for("ui_signin.sign_in_form", next=request.full_path.rstrip("?")))
    return None


def read_chats(state):
    return services().call("intake", "list_chats", {"state": state, "limit": 50}, viewer())


def read_chat(chat_id, after=0):
    """The chat and its entries after ``after`` (intake's 404 chat_not_found for those who may not see it)."""
    return services().call("intake", "chat_entries", chat_id, {"after": after, "limit": 500}, viewer(), None)


def _names():
    """People's names by how chats name them ("agent-7", "account-3")."""
    names = accounts.display_names(current_app.extensions["helpdesk.db"])
    names.update((agent["assignee"], agent["name"]) for agent in read_agents())
    return names


def _lists():
    mine = [chat for chat in read_chats("active") if chat["agent"] == g.identity.actor]
    return {"waiting": read_chats("waiting"), "mine": mine}


@bp.get("/")
def chats():
    return render_template("chats/console.html", **_lists())


@bp.get("/waiting")
def waiting():
    """The lists alone: what the console fetches when its live stream says the chats changed."""
    return render_template("chats/_lists.html", **_lists())


@bp.post("/<chat_id>/join")
def join(chat_id):
    try:
        services().call("intake", "join_chat", chat_id, viewer())
    except Conflict as refused:
        flash(_("Another agent took this chat.") if refused.code == "chat_taken" else _("This chat has ended."),
              "error")
        return redirect(url_for(".chats"))
    return redirect(url_for(".chat", chat_id=chat_id))


@bp.get("/<chat_id>")
def chat(chat_id):
    timeline = read_chat(chat_id)
    return render_template("chats/chat.html", chat=timeline["chat"], entries=timeline["entries"], names=_names())


@bp.get("/<chat_id>/transcript")
def transcript(chat_id):
    timeline = read_chat(chat_id)
    return render_template("chats/_transcript.html", chat=timeline["chat"], entries=timeline["entries"],
                           names=_names())


@bp.post("/<chat_id>/messages")
def post(chat_id):
    body = request.form.get("body", "").strip()
    if body:
        try:
            validate(ChatPost, {"body": body})
            services().call("intake", "post_chat_message", chat_id, {"body": body}, viewer(), None)
        except HelpdeskError as refused:
            flash(_("Not sent: %(reason)s", reason=refused.message), "error")
    if request.headers.get("HX-Request"):
        timeline = read_chat(chat_id)  # htmx: the panel again, the form empty and the message in it
        return render_template("chats/_panel.html", chat=timeline["chat"], entries=timeline["entries"],
                               names=_names())
    return redirect(url_for(".chat", chat_id=chat_id))


@bp.post("/<chat_id>/leave")
def leave(chat_id):
    services().call("intake", "leave_chat", chat_id, viewer(), None)
    flash(_("The chat has ended; its transcript is on the ticket."), "success")
    return redirect(url_for(".chat", chat_id=chat_id))
