"""Following tickets and agents' notifications (kept by the tickets service): the REST routes, the
functions the workspace calls too, and how ``@name`` in an internal note finds the agents it names.
"""
import re

from flask import Blueprint, jsonify

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.tickets import FollowView, NotificationPage, NotificationsRead

from . import json_body, operation, services, viewer
from .routing import read_agents

bp = Blueprint("notifications", __name__, url_prefix="/api/v1")

STAFF = ("admin", "agent")
_MENTION = re.compile(r"(?<![\w.@])@([\w][\w.-]*)", re.UNICODE)


@operation(bp, "/tickets/<number>/follow", "PUT", summary="Follow a ticket", tag="notifications",
           answer=FollowView, roles=STAFF, errors=(403, 404))
def follow(number):
    """The caller is told (notifications) of the ticket's messages and changes made by others."""
    return jsonify(follow_ticket(number, True))


@operation(bp, "/tickets/<number>/follow", "DELETE", summary="Stop following a ticket", tag="notifications",
           answer=FollowView, roles=STAFF, errors=(403, 404))
def unfollow(number):
    return jsonify(follow_ticket(number, False))


@operation(bp, "/tickets/<number>/follow", "GET", summary="Who follows a ticket", tag="notifications",
           answer=FollowView, roles=STAFF, errors=(403, 404))
def get_following(number):
    return jsonify(read_following(number))


@operation(bp, "/notifications", "GET", summary="My notifications", tag="notifications", answer=NotificationPage,
           roles=STAFF, errors=(403,))
def list_notifications():
    """The caller's latest notifications, newest first, and how many are unread: mentions in internal notes
    (``@name``) and changes to tickets they follow."""
    return jsonify(read_notifications())


@operation(bp, "/notifications/read", "POST", summary="Mark notifications read", tag="notifications",
           body=NotificationsRead, answer=NotificationPage, roles=STAFF, errors=(400, 403, 413, 415, 422))
def mark_read():
    """``{"ids": [...]}`` or ``{"all": true}``; only the caller's own are touched."""
    return jsonify(mark_notifications_read(json_body()))


def follow_ticket(number, following):
    return services().call("tickets", "follow_ticket", number, viewer(), following)


def read_following(number):
    return services().call("tickets", "get_following", number, viewer())


def read_notifications():
    return services().call("tickets", "list_notifications", viewer())


def mark_notifications_read(read):
    validate(NotificationsRead, read)
    return services().call("tickets", "mark_notifications_read", read, viewer())


def handles(agent):
    """The ``@names`` an agent answers to: their email's local part, their first name, their name without
    spaces (all lower case)."""
    name = (agent.get("name") or "").strip().lower()
    found = {(agent.get("email") or "").split("@")[0].lower(), name.replace(" ", "")}
    if name:
        found.add(name.split()[0])
    return found - {""}


def mentioned(body, agents):
    """The actor names (``assignee``) of the agents ``@named`` in ``body``; a name several agents answer
    to names none of them (never guessed)."""
    wanted = {word.lower().rstrip(".-") for word in _MENTION.findall(body)}
    if not wanted:
        return []
    owners = {}
    for agent in agents:
        for handle in handles(agent):
            owners.setdefault(handle, []).append(agent["assignee"])
    return list(dict.fromkeys(owners[word][0] for word in sorted(wanted) if len(owners.get(word, ())) == 1))


def with_mentions(message):
    """An internal note with ``mentions`` filled in from its ``@names`` when the caller gave none."""
    if message.get("visibility") != "internal" or message.get("mentions") or "@" not in message.get("body", ""):
        return message
    found = mentioned(message["body"], read_agents())
    return {**message, "mentions": found} if found else message
