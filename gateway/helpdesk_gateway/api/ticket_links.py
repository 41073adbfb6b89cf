"""Related tickets and merging a duplicate: the REST routes and the functions the workspace calls too."""
from flask import Blueprint, jsonify

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.tickets import LinkedTicket, TicketLinkRequest, TicketMergeRequest, TicketView

from . import json_body, operation, services, viewer

bp = Blueprint("ticket_links", __name__, url_prefix="/api/v1")

STAFF = ("admin", "agent")
WRITE_ERRORS = (400, 403, 404, 413, 415, 422)


@operation(bp, "/tickets/<number>/links", "POST", summary="Link a related ticket", tag="tickets",
           body=TicketLinkRequest, answer=LinkedTicket, answer_is_list=True, answer_status=201, roles=STAFF,
           errors=WRITE_ERRORS)
def link_ticket(number):
    """Links the ticket to ``other`` (both show the link, both histories record it); linking again changes
    nothing. Both tickets must be visible to the caller (404 otherwise). Answers the ticket's links."""
    return jsonify(link_tickets(number, json_body())), 201


@operation(bp, "/tickets/<number>/links", "GET", summary="Linked tickets", tag="tickets", answer=LinkedTicket,
           answer_is_list=True, roles=STAFF, errors=(403, 404))
def list_links(number):
    """Related tickets, and the survivor or duplicates of a merge (``kind``), oldest link first."""
    return jsonify(read_links(number))


@operation(bp, "/tickets/<number>/merge", "POST", summary="Merge a duplicate into another ticket", tag="tickets",
           body=TicketMergeRequest, answer=TicketView, roles=STAFF, errors=WRITE_ERRORS + (409,))
def merge_ticket(number):
    """Merges this ticket (a duplicate) into ``into``: this one is closed with ``merged_into`` pointing to
    the survivor; its request and messages are copied to the survivor as internal notes (neither customer
    sees the other's words); both histories record it. 409 ``already_merged`` or ``ticket_closed`` for a
    ticket that cannot take part. Answers the survivor."""
    return jsonify(merge_tickets(number, json_body()))


def link_tickets(number, link):
    validate(TicketLinkRequest, link)
    return services().call("tickets", "link_tickets", number, link, viewer())


def read_links(number):
    return services().call("tickets", "list_links", number, viewer())


def merge_tickets(number, merge):
    validate(TicketMergeRequest, merge)
    return services().call("tickets", "merge_ticket", number, merge, viewer())
