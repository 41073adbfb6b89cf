"""Who has a ticket open and who is typing a reply (collision warnings): kept by the tickets service."""
from flask import Blueprint, jsonify

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.tickets import PresenceUpdate, TicketPresenceView

from . import json_body, operation, services, viewer
from .canned_replies import my_name

bp = Blueprint("presence", __name__, url_prefix="/api/v1")

STAFF = ("admin", "agent")


@operation(bp, "/tickets/<number>/presence", "PUT", summary="Say you have a ticket open", tag="tickets",
           body=PresenceUpdate, answer=TicketPresenceView, roles=STAFF, errors=(400, 403, 404, 413, 415, 422))
def be_here(number):
    """Call every few seconds while the ticket is open (``typing``: writing a reply now). Answers the other
    agents seen on the ticket within the last 15 seconds, so two never answer the same customer unawares."""
    return jsonify(say_present(number, json_body(), my_name()))


@operation(bp, "/tickets/<number>/presence", "GET", summary="Who has a ticket open", tag="tickets",
           answer=TicketPresenceView, roles=STAFF, errors=(403, 404))
def who_is_here(number):
    return jsonify(services().call("tickets", "ticket_presence", number, viewer()))


def say_present(number, update, name):
    validate(PresenceUpdate, update)
    return services().call("tickets", "ticket_presence", number, viewer(), update, name)
