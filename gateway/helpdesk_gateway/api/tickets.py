"""The tickets API: open, list, read, change tickets; add and read messages; read history."""
from flask import Blueprint, current_app, g, jsonify, request, url_for

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.tickets import (CustomerResolution, CustomFieldView, HistoryEntry, MessageView,
                                                NewCustomField, NewMessage, NewTicket, TicketChanges, TicketCounts,
                                                TicketPage, TicketQuery,
                                                TicketView)
from helpdesk_common.errors import ValidationFailed

from . import json_body, operation, query_args, services, viewer

ROUTED = ("assignee", "team", "tier")  # routing decides these (services/routing/README.md)

bp = Blueprint("tickets", __name__, url_prefix="/api/v1")

TICKET_ERRORS = (404,)
WRITE_ERRORS = (400, 413, 415, 422)


@operation(bp, "/tickets", "POST", summary="Open a ticket", tag="tickets", body=NewTicket, answer=TicketView,
           answer_status=201, errors=WRITE_ERRORS + (403,), scope="own",
           headers={"Idempotency-Key": "Repeat a request safely: the same key and body return the first "
                                       "ticket (200, header Idempotent-Replayed) instead of a second one."})
def create_ticket():
    """Opens a ticket and gives it a number. A customer opens tickets for themselves only: the requester
    is their token's address (the default), ``requester.phone`` and ``requester.social`` are refused
    (422 ``customer_identifier_refused``), and ``channel``, ``team`` and ``priority`` are ignored (web,
    none, normal)."""
    payload = json_body()
    if g.identity.role == "customer":
        payload.setdefault("requester", {"email": g.identity.email})
    validate(NewTicket, payload)  # refuse bad input at the edge; the service checks again
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 200:
        raise ValidationFailed("The Idempotency-Key header must be 1 to 200 characters.",
                               details=[{"field": "Idempotency-Key", "code": "invalid_format",
                                         "message": "1 to 200 characters"}])
    result = current_app.extensions["helpdesk.ticket_batches"].call(
        {"ticket": payload, "viewer": viewer(), "idempotency_key": key})
    ticket = result["ticket"]
    response = jsonify(ticket)
    response.status_code = 201 if result["created"] else 200
    response.headers["Location"] = url_for("tickets.get_ticket", number=ticket["number"])
    if not result["created"]:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@operation(bp, "/tickets", "GET", summary="List tickets", tag="tickets", query=TicketQuery, answer=TicketPage,
           errors=(422,), scope="list")
def list_tickets():
    """The workspace's lists, with the same filters. ``view``: ``mine`` (assigned to the caller), ``team``
    (in the caller's teams), ``unassigned`` (these three: work not resolved or closed, unless ``status``
    is given), ``sla_at_risk`` (a running SLA clock past its warning time), ``sla_breached`` (a clock past
    its target and not stopped), ``all``. Filter by status, priority, assignee, team, channel, tag,
    requester (email) and text. ``sort``: ``created`` (newest first, the default), ``updated`` (last
    changed first), ``priority`` (urgent first, then newest), ``sla_due`` (the soonest SLA target first;
    tickets without a running clock last). Pass ``next_cursor`` back as ``cursor`` with the same sort for
    the next page: pages stay stable while tickets arrive or change. SLA views and the SLA sort are for
    agents (403 ``agents_only``)."""
    return jsonify(find_tickets(query_args(TicketQuery).model_dump()))


@operation(bp, "/tickets/counts", "GET", summary="Count the tickets of each list", tag="tickets",
           answer=TicketCounts, roles=("admin", "agent"), scope="list")
def count_tickets():
    """The exact number of tickets in each ``view`` of ``GET /tickets`` for the caller, without other
    filters: the workspace's sidebar."""
    return jsonify(count_views())


@operation(bp, "/tickets/<number>", "GET", summary="Read a ticket", tag="tickets", answer=TicketView,
           errors=TICKET_ERRORS)
def get_ticket(number):
    return jsonify(read_ticket(number))


@operation(bp, "/tickets/<number>", "PATCH", summary="Change a ticket", tag="tickets", body=TicketChanges,
           answer=TicketView, roles=("admin", "agent"), errors=TICKET_ERRORS + WRITE_ERRORS + (403, 409))
def update_ticket(number):
    """Changes only the fields given. A status change must be allowed by the workflow (409 otherwise).
    ``assignee``, ``team`` and ``tier`` are decided by routing (as with ``PUT .../assignment``): an
    ``assignee`` who is one of routing's agents takes the ticket whatever their load, null puts it back
    in its team's queue."""
    return jsonify(change_ticket(number, json_body()))


@operation(bp, "/tickets/<number>/resolution", "POST", summary="The customer says it is solved, or not",
           tag="tickets", body=CustomerResolution, answer=TicketView, errors=TICKET_ERRORS + WRITE_ERRORS + (403, 409))
def resolve_ticket(number):
    """``{"solved": true}`` takes the ticket to the workflow's resolved status; ``false`` reopens a resolved
    one. Meant for the ticket's customer (the portal's buttons); agents may do it for them. 409
    ``invalid_transition`` when the workflow allows no such step (a closed ticket, or solved twice)."""
    return jsonify(resolve_by_customer(number, json_body()))


def resolve_by_customer(number, resolution):
    validate(CustomerResolution, resolution)
    return services().call("tickets", "resolve_by_customer", number, resolution, viewer())


# The functions below are what the REST routes and the workspace pages (``helpdesk_gateway.ui``) both
# call: one path to the services, so the UI can do nothing the API cannot (parity).

def find_tickets(query):
    """A page of the tickets the caller may see (``query``: TicketQuery's fields)."""
    return services().call("tickets", "list_tickets", query, viewer())


def count_views():
    """{view: number of tickets} for the caller (``TicketCounts``)."""
    return services().call("tickets", "count_tickets", viewer())


def read_ticket(number):
    return services().call("tickets", "get_ticket", number, viewer())


def change_ticket(number, changes):
    """Apply a TicketChanges body: routed fields through routing, the rest in the tickets service."""
    validate(TicketChanges, changes)
    routed = {field: changes[field] for field in ROUTED if field in changes}
    rest = {field: value for field, value in changes.items() if field not in ROUTED}
    if not routed:
        return services().call("tickets", "update_ticket", number, rest, viewer())
    # Routing is the one writer of these fields. The rest is checked first (changing nothing), so a
    # refused change leaves routing alone too; then the tickets service applies routing's decision with
    # the rest, at once, so the answer shows it (the decision's event, arriving later, changes nothing).
    ticket = services().call("tickets", "update_ticket", number, rest, viewer(), None, True)
    decided = services().call("routing", "route_by_hand", number, routed, viewer(), ticket)
    return services().call("tickets", "update_ticket", number, rest, viewer(), decided["decisions"])


@operation(bp, "/tickets/<number>/messages", "POST", summary="Reply or add an internal note", tag="tickets",
           body=NewMessage, answer=MessageView, answer_status=201, errors=TICKET_ERRORS + WRITE_ERRORS + (403,))
def add_message(number):
    """``visibility`` public (the customer sees it) or internal (agents only). In an internal note,
    ``@name`` (an agent's email local part, first name, or name without spaces) notifies that agent, unless
    ``mentions`` (agents' actor names) is given."""
    return jsonify(post_message(number, json_body())), 201


def post_message(number, message):
    """A reply or an internal note (NewMessage's fields); ``@names`` in a note notify those agents."""
    from .notifications import with_mentions

    validate(NewMessage, message)
    return services().call("tickets", "add_message", number, with_mentions(message), viewer())


@operation(bp, "/tickets/<number>/messages", "GET", summary="Read the conversation", tag="tickets",
           answer=MessageView, answer_is_list=True, errors=TICKET_ERRORS)
def list_messages(number):
    """Oldest first. Customers see public messages only."""
    return jsonify(read_messages(number))


def read_messages(number):
    return services().call("tickets", "list_messages", number, viewer())


@operation(bp, "/tickets/<number>/history", "GET", summary="Read the change history", tag="tickets",
           answer=HistoryEntry, answer_is_list=True, roles=("admin", "agent"), errors=TICKET_ERRORS + (403,))
def get_history(number):
    """Every change: who, when, which field, old and new value."""
    return jsonify(read_history(number))


def read_history(number):
    return services().call("tickets", "get_history", number, viewer())


@operation(bp, "/custom-fields", "POST", summary="Define a custom field", tag="configuration",
           body=NewCustomField, answer=CustomFieldView, answer_status=201, roles=("admin",),
           errors=WRITE_ERRORS + (403, 409))
def define_custom_field():
    return jsonify(add_custom_field(json_body())), 201


def add_custom_field(definition):
    validate(NewCustomField, definition)
    return services().call("tickets", "define_custom_field", definition)


@operation(bp, "/custom-fields", "GET", summary="List custom fields", tag="configuration",
           answer=CustomFieldView, answer_is_list=True)
def list_custom_fields():
    return jsonify(read_custom_fields())


def read_custom_fields():
    return services().call("tickets", "list_custom_fields")


@operation(bp, "/workflow", "GET", summary="The ticket workflow", tag="configuration")
def get_workflow():
    """Statuses, their categories and the transitions allowed from each."""
    return jsonify(read_workflow())


def read_workflow():
    return services().call("tickets", "get_workflow")
