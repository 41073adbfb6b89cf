"""The contacts API (agents and admins): a contact and its identifiers (email addresses, phone numbers,
social handles), finding one by any identifier, merging two, and linking a ticket to its contact.

Every call passes the viewer: an agent limited to teams sees the contacts with a ticket they may see, or
with no ticket yet (the tickets service decides: ``helpdesk_tickets.contacts.visible``)."""
from flask import Blueprint, current_app, g, jsonify

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.contacts import (ContactMerge, ContactPage, ContactQuery, ContactView, ErasureView,
                                                 Identifier, NewContact, PersonalDataExport, TicketContact)
from helpdesk_common.contracts.tickets import TicketView

from .. import audit, personal_data
from . import json_body, operation, query_args, services, viewer

bp = Blueprint("contacts", __name__, url_prefix="/api/v1")

STAFF = ("admin", "agent")
WRITE_ERRORS = (400, 403, 415, 422)


@operation(bp, "/contacts", "POST", summary="Create a contact", tag="contacts", body=NewContact,
           answer=ContactView, answer_status=201, roles=STAFF, errors=WRITE_ERRORS)
def create_contact():
    """With one or more identifiers (normalised: emails lower case, phone numbers E.164). An identifier
    may be shared with another contact; a sender using it is then flagged, never guessed."""
    body = json_body()
    validate(NewContact, body)
    return jsonify(services().call("tickets", "create_contact", body, viewer())), 201


@operation(bp, "/contacts", "GET", summary="List or find contacts", tag="contacts", query=ContactQuery,
           answer=ContactPage, roles=STAFF, errors=(403, 422), scope="list")
def list_contacts():
    """Newest first; ``kind`` and ``value`` (and ``platform`` for social) find those with that identifier."""
    return jsonify(services().call("tickets", "find_contacts", query_args(ContactQuery).model_dump(), viewer()))


@operation(bp, "/contacts/<int:contact_id>", "GET", summary="Read a contact", tag="contacts", answer=ContactView,
           roles=STAFF, errors=(403, 404), scope="contact")
def get_contact(contact_id):
    return jsonify(services().call("tickets", "get_contact", contact_id, viewer()))


@operation(bp, "/contacts/<int:contact_id>/identifiers", "POST", summary="Add an identifier", tag="contacts",
           body=Identifier, answer=ContactView, answer_status=201, roles=STAFF, errors=WRITE_ERRORS + (404, 409),
           scope="contact")
def add_identifier(contact_id):
    body = json_body()
    validate(Identifier, body)
    return jsonify(services().call("tickets", "add_contact_identifier", contact_id, body, viewer())), 201


@operation(bp, "/contacts/<int:contact_id>/identifiers/<int:identifier_id>", "DELETE", summary="Remove an identifier",
           tag="contacts", answer=ContactView, roles=STAFF, errors=(403, 404, 409), scope="contact")
def remove_identifier(contact_id, identifier_id):
    """The last identifier of a contact stays (409 ``last_identifier``)."""
    return jsonify(services().call("tickets", "remove_contact_identifier", contact_id, identifier_id,
                                     viewer()))


@operation(bp, "/contacts/<int:contact_id>/merge", "POST", summary="Merge another contact into this one",
           tag="contacts", body=ContactMerge, answer=ContactView, roles=STAFF, errors=WRITE_ERRORS + (404,),
           scope="contact")
def merge_contacts(contact_id):
    """The other contact's identifiers and tickets move here; the other contact is removed."""
    body = json_body()
    validate(ContactMerge, body)
    return jsonify(services().call("tickets", "merge_contacts", contact_id, body, viewer()))


@operation(bp, "/contacts/<int:contact_id>/personal-data", "GET", summary="Export a contact's personal data",
           tag="contacts", answer=PersonalDataExport, roles=("admin",), errors=(403, 404), scope="contact")
def export_personal_data(contact_id):
    """Everything the platform holds about the person, gathered from every service: ``services.tickets``
    (the contact, its tickets with messages and history), ``intake`` (mail as read, attachments' metadata,
    quarantined raw mail, mail sent, chats, web forms, social threads), ``surveys``, ``analytics`` and
    ``gateway`` (customer tokens, portal sign-ins). Recorded in the audit log."""
    sessions = current_app.extensions["helpdesk.db"]
    answer = personal_data.export(sessions, services(), contact_id, viewer())
    with sessions.begin() as session:
        audit.record(session, g.identity.actor, "GET /api/v1/contacts/<int:contact_id>/personal-data",
                     target=f"/api/v1/contacts/{contact_id}", details={"exported": True},
                     request_id=g.get("request_id"))
    return jsonify(answer)


@operation(bp, "/contacts/<int:contact_id>/erasure", "POST", summary="Erase a contact's personal data",
           tag="contacts", answer=ErasureView, roles=("admin",), errors=(403, 404), scope="contact")
def erase_personal_data(contact_id):
    """On the person's request: their name, addresses, numbers and handles, their tickets' subject,
    description and messages, their mail, chats, attachments and survey comments are removed in every
    service (``contact_erased``); what reports count stays (the tickets' channel, priority, team, status,
    times; survey scores). Idempotent: repeated, it answers ``already_erased`` and changes nothing.
    Recorded in the audit log."""
    return jsonify(personal_data.erase(current_app.extensions["helpdesk.db"], services(), contact_id, viewer()))


@operation(bp, "/tickets/<number>/contact", "PUT", summary="Link a ticket to its contact", tag="contacts",
           body=TicketContact, answer=TicketView, roles=STAFF, errors=WRITE_ERRORS + (404,))
def link_ticket_contact(number):
    """Resolves a ticket whose sender matched several contacts (``requester.contact_ambiguous``)."""
    body = json_body()
    validate(TicketContact, body)
    return jsonify(services().call("tickets", "link_ticket_contact", number, body, viewer()))
