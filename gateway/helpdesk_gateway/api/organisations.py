"""The organisations API: customer companies, the email domains their members are found by, whether
members see each other's tickets (``shared``), and an admin's choice of a contact's organisation.

The tickets service owns organisations (beside the contacts that belong to them:
``helpdesk_tickets.organisations``). Agents read them (a name and domains are no one's personal data,
so team limits do not narrow them); admins change them."""
from flask import Blueprint, jsonify

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.contacts import ContactView
from helpdesk_common.contracts.organisations import (ContactOrganisation, NewOrganisation, OrganisationChanges,
                                                      OrganisationPage, OrganisationQuery, OrganisationView)

from . import json_body, operation, query_args, services, viewer

bp = Blueprint("organisations", __name__, url_prefix="/api/v1")

STAFF = ("admin", "agent")
WRITE_ERRORS = (400, 403, 415, 422)


@operation(bp, "/organisations", "POST", summary="Create an organisation", tag="organisations",
           body=NewOrganisation, answer=OrganisationView, answer_status=201, roles=("admin",),
           errors=WRITE_ERRORS + (409,))
def create_organisation():
    """Contacts whose primary address is at one of ``domains`` join it at once, and new ones as they
    appear; a domain is one organisation's only (409 ``domain_taken``). ``shared``: its members see each
    other's tickets in the portal and through customer tokens (they change only their own)."""
    body = json_body()
    validate(NewOrganisation, body)
    return jsonify(services().call("tickets", "create_organisation", body, viewer())), 201


@operation(bp, "/organisations", "GET", summary="List organisations", tag="organisations",
           query=OrganisationQuery, answer=OrganisationPage, roles=STAFF, errors=(403, 422), scope="list")
def list_organisations():
    """Oldest first; ``domain`` finds the organisation that domain belongs to."""
    return jsonify(find_organisations(query_args(OrganisationQuery).model_dump()))


def find_organisations(query):
    return services().call("tickets", "find_organisations", query, viewer())


@operation(bp, "/organisations/<int:organisation_id>", "GET", summary="Read an organisation", tag="organisations",
           answer=OrganisationView, roles=STAFF, errors=(403, 404))
def get_organisation(organisation_id):
    return jsonify(read_organisation(organisation_id))


def read_organisation(organisation_id):
    return services().call("tickets", "get_organisation", organisation_id, viewer())


@operation(bp, "/organisations/<int:organisation_id>", "PATCH", summary="Change an organisation",
           tag="organisations", body=OrganisationChanges, answer=OrganisationView, roles=("admin",),
           errors=WRITE_ERRORS + (404, 409))
def change_organisation(organisation_id):
    """``domains`` replaces the list: contacts at a removed domain leave (unless an admin put them in), those
    at an added one join."""
    body = json_body()
    validate(OrganisationChanges, body)
    return jsonify(services().call("tickets", "change_organisation", organisation_id, body, viewer()))


@operation(bp, "/contacts/<int:contact_id>/organisation", "PUT", summary="Put a contact in an organisation",
           tag="organisations", body=ContactOrganisation, answer=ContactView, roles=("admin",),
           errors=WRITE_ERRORS + (404,), scope="contact")
def set_contact_organisation(contact_id):
    """An admin's choice (``organisation_id``, or null for none), which the contact's domain no longer
    overrides."""
    body = json_body()
    validate(ContactOrganisation, body)
    return jsonify(services().call("tickets", "set_contact_organisation", contact_id, body, viewer()))
