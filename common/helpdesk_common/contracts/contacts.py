"""Contracts of contacts (owned by the tickets service): one person, several identifiers.

An identifier is an email address, a phone number, or a handle on a social platform. The tickets
service normalises them (emails lower-cased, phone numbers to E.164, handles without ``@``, lower-cased)
before it stores or looks one up.
"""
from datetime import datetime
from typing import Annotated, Literal, Optional

from pydantic import Field, StringConstraints

from . import Contract, RecordId, View
from .tickets import Change

IdentifierKind = Literal["email", "phone", "social"]
Platform = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
IdentifierValue = Annotated[str, StringConstraints(min_length=1, max_length=254)]


class Identifier(Contract):
    """``{"kind": "email", "value": "eva@example.se"}``, ``{"kind": "phone", "value": "+31 6 1234 5678"}``,
    ``{"kind": "social", "platform": "mastodon", "value": "@eva"}``."""

    kind: IdentifierKind
    value: IdentifierValue
    platform: Optional[Platform] = None  # social handles only


class NewContact(Contract):
    name: Optional[Annotated[str, StringConstraints(max_length=200)]] = None
    identifiers: Annotated[list[Identifier], Field(min_length=1, max_length=50)]


class ContactQuery(Contract):
    """Find contacts by one identifier (``kind`` + ``value``, ``platform`` for social), or list them all."""

    kind: Optional[IdentifierKind] = None
    value: Optional[IdentifierValue] = None
    platform: Optional[Platform] = None
    limit: Annotated[int, Field(ge=1, le=100)] = 25
    cursor: Optional[Annotated[str, StringConstraints(max_length=20)]] = None


class ContactMerge(Contract):
    """Merge contact ``other`` into this one: its identifiers and tickets move here, it is removed."""

    other: RecordId


class TicketContact(Contract):
    """An agent links a ticket to the contact it belongs to (after an ambiguous sender, say)."""

    contact_id: RecordId


class IdentifierView(View):
    id: int
    kind: str
    value: str
    platform: Optional[str] = None


class ContactView(View):
    id: int
    name: Optional[str] = None
    email: Optional[str] = None  # the primary address: one of its email identifiers, or none
    identifiers: list[IdentifierView] = []
    organisation_id: Optional[int] = None  # the organisation it belongs to (by its domain or an admin's choice)
    created_at: datetime
    erased_at: Optional[datetime] = None  # the person's data was erased on request: only the id is left


class ContactPage(View):
    items: list[ContactView]
    next_cursor: Optional[str] = None


# --- Events: the data of the contact events (the tickets service's; catalogue: ``helpdesk_common.events``)

class ContactCreated(View):
    contact: ContactView


class ContactUpdated(View):
    contact: ContactView
    changes: list[Change]


class ContactMerged(View):
    contact: ContactView  # the contact that remains, after the merge
    merged_contact_id: int  # the contact that was merged into it and no longer exists
    ticket_numbers: list[str]  # the tickets whose requester moved (each also announced as ticket_updated)


class ContactErased(View):
    """A contact's personal data was erased on request (``POST /api/v1/contacts/{id}/erasure``). It names what to
    erase, so every service (and integrator) holding something about this person can find it: their
    addresses, numbers and handles, and their tickets. The tickets keep only what reports count."""

    contact_id: int
    emails: list[str] = []
    phones: list[str] = []  # E.164
    socials: list[str] = []  # platform:handle
    ticket_numbers: list[str] = []
    erased_at: datetime


# --- Personal data: the export and the erasure (the gateway gathers every service's part) --------------

class PersonalDataQuery(Contract):
    """What a service is asked to export about one person: their identifiers and their tickets (the tickets
    service's answer, which the gateway passes on)."""

    emails: list[Annotated[str, StringConstraints(max_length=254)]] = Field(default=[], max_length=100)
    phones: list[Annotated[str, StringConstraints(max_length=40)]] = Field(default=[], max_length=100)
    socials: list[Annotated[str, StringConstraints(max_length=300)]] = Field(default=[], max_length=100)
    contact_id: Optional[int] = None
    ticket_numbers: list[Annotated[str, StringConstraints(max_length=40)]] = Field(default=[], max_length=100_000)


class PersonalDataExport(View):
    contact_id: int
    exported_at: datetime
    erased_at: Optional[datetime] = None  # set once the contact was erased: what is left is anonymous
    services: dict[str, dict]  # each service's part, by service name (tickets, intake, surveys, ...)


class ErasureView(View):
    contact_id: int
    erased_at: datetime
    already_erased: bool = False  # true: an earlier request erased it; nothing was done now
    ticket_numbers: list[str] = []  # tickets kept for the counts, their personal content removed
