"""Contracts of organisations (owned by the tickets service, beside the contacts that belong to them).

An organisation is a customer company: its contacts belong to it by their primary address's domain
(``domains``) or because an admin put them in it. ``shared``: its members see each other's tickets in
the portal (and through a customer token); otherwise each member sees only their own.
"""
from datetime import datetime
from typing import Annotated, Optional

from pydantic import Field, StringConstraints

from . import Contract, RecordId, View
from .tickets import Change, OrganisationRef  # noqa: F401  (the ref is a ticket's)

# A host name of at least two labels, as it follows the ``@`` of an address (normalised to lower case).
Domain = Annotated[str, StringConstraints(min_length=3, max_length=253, to_lower=True,
                                          pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")]
OrganisationName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class NewOrganisation(Contract):
    """``{"name": "Acme", "domains": ["acme.example"], "shared": true}``."""

    name: OrganisationName
    domains: Annotated[list[Domain], Field(max_length=50)] = []
    shared: bool = False


class OrganisationChanges(Contract):
    """What an admin changes; fields left out stay. ``domains`` replaces the list."""

    name: Optional[OrganisationName] = None
    domains: Optional[Annotated[list[Domain], Field(max_length=50)]] = None
    shared: Optional[bool] = None


class OrganisationQuery(Contract):
    """List organisations by name, or find the one a ``domain`` belongs to."""

    domain: Optional[Domain] = None
    limit: Annotated[int, Field(ge=1, le=100)] = 50
    cursor: Optional[Annotated[str, StringConstraints(max_length=20)]] = None


class ContactOrganisation(Contract):
    """An admin puts a contact in an organisation (or, with null, out of any: then its domain decides no
    more either, until an admin sets one again)."""

    organisation_id: Optional[RecordId] = None


class OrganisationView(View):
    id: int
    name: str
    domains: list[str] = []
    shared: bool = False
    members: int = 0  # contacts in it now
    created_at: datetime


class OrganisationPage(View):
    items: list[OrganisationView]
    next_cursor: Optional[str] = None


# --- Events: the data of the organisation events (the tickets service's; catalogue: ``helpdesk_common.events``)

class OrganisationCreated(View):
    organisation: OrganisationView
    joined: list[int] = []  # the contacts that joined it by its domains


class OrganisationUpdated(View):
    organisation: OrganisationView
    changes: list[Change]  # name, domains, shared, and members (the contact ids that joined or left)
