"""Rules about who acts as whom that several services apply alike. Plain Python: no nameko, no database.

A customer acts only as themselves (issue 17): whatever opens a ticket for a customer (the tickets API,
intake's web form) takes the requester from the customer's token and nothing else. Contacts are found by
every identifier a requester gives, so a phone number or social handle from a customer would let them
open a ticket in another contact's name and learn that person's name and address. Such identifiers are
refused with a clear 422 rather than dropped silently: the customer learns what to leave out, and an
agent adds identifiers to a contact. The channel, team and priority of a customer's request are the
platform's to decide (routing rules, agents): a customer's values are ignored.
"""
from .errors import Forbidden, ValidationFailed

CUSTOMER_IDENTIFIERS = ("phone", "social")
CUSTOMER_DEFAULTS = {"team": None, "priority": "normal"}
"""What a customer's request gets instead of the team and priority it sent."""


def check_own_requester(requester, viewer):
    """Raise unless ``requester`` (a ``Requester`` contract) is ``viewer``'s own, when ``viewer`` is a customer."""
    if viewer.role != "customer":
        return
    if requester.email.lower() != (viewer.email or "").lower():
        raise Forbidden("Customers can only open tickets for themselves.", code="requester_mismatch")
    given = [name for name in CUSTOMER_IDENTIFIERS if getattr(requester, name, None) is not None]
    if given:
        raise ValidationFailed(
            f"Customers open tickets under their own email address only; leave out {', '.join(given)}.",
            code="customer_identifier_refused",
            details=[{"field": f"requester.{name}", "code": "not_allowed",
                      "message": "not accepted from a customer; an agent adds identifiers to a contact"}
                     for name in given])
