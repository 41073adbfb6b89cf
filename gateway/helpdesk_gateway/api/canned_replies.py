"""Canned replies (macros): the REST routes, and the functions the workspace's picker calls too.

The tickets service owns them (``services/tickets/README.md``); the gateway adds only the agent's display
name for ``{{agent_name}}``, which it knows from accounts and routing's agents.
"""
from flask import Blueprint, current_app, jsonify

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.tickets import CannedReplyView, NewCannedReply, RenderedReply

from .. import accounts
from . import json_body, operation, services, viewer
from .routing import read_agents

bp = Blueprint("canned_replies", __name__, url_prefix="/api/v1")

STAFF = ("admin", "agent")
PLACEHOLDERS = ("customer_name", "customer_email", "ticket_number", "ticket_subject", "agent_name")


@operation(bp, "/canned-replies", "GET", summary="Canned replies", tag="canned replies", answer=CannedReplyView,
           answer_is_list=True, roles=STAFF, errors=(403,))
def list_canned():
    """The shared canned replies and the caller's own, by title."""
    return jsonify(read_canned_replies())


@operation(bp, "/canned-replies", "POST", summary="Make a canned reply", tag="canned replies", body=NewCannedReply,
           answer=CannedReplyView, answer_status=201, roles=STAFF, errors=(400, 403, 413, 415, 422))
def create_canned():
    """``shared`` ones only by admins and supervisors (403 ``admins_only``); otherwise the caller's own.
    Placeholders: ``{{customer_name}}``, ``{{customer_email}}``, ``{{ticket_number}}``,
    ``{{ticket_subject}}``, ``{{agent_name}}`` (422 ``unknown_placeholder`` for others); ``status`` must be
    one of the workflow's."""
    return jsonify(create_canned_reply(json_body())), 201


@operation(bp, "/canned-replies/<int:reply_id>", "DELETE", summary="Delete a canned reply", tag="canned replies",
           roles=STAFF, errors=(403, 404))
def delete_canned(reply_id):
    """One's own, or a shared one (admins and supervisors)."""
    return jsonify(services().call("tickets", "delete_canned_reply", reply_id, viewer()))


@operation(bp, "/tickets/<number>/canned-replies/<int:reply_id>", "GET", summary="A canned reply filled in for a ticket",
           tag="canned replies", answer=RenderedReply, roles=STAFF, errors=(403, 404))
def render_canned(number, reply_id):
    """The text with its placeholders filled in from the ticket and the caller, and the status and priority
    it sets: post the text as a message (``POST .../messages``) and the rest as a change (``PATCH``), as the
    workspace does when the agent sends it."""
    return jsonify(render_canned_reply(reply_id, number))


def read_canned_replies():
    return services().call("tickets", "list_canned_replies", viewer())


def create_canned_reply(reply):
    validate(NewCannedReply, reply)
    return services().call("tickets", "create_canned_reply", reply, viewer())


def render_canned_reply(reply_id, number):
    return services().call("tickets", "render_canned_reply", reply_id, number, viewer(), my_name())


def my_name():
    """The caller's display name: their account's, or their routing agent's."""
    from flask import g

    actor = g.identity.actor
    names = accounts.display_names(current_app.extensions["helpdesk.db"])
    if actor not in names:
        names.update((agent["assignee"], agent["name"]) for agent in read_agents())
    return names.get(actor)
