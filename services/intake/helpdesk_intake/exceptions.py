"""Errors of the intake service that more than one place raises.

Callers receive the shared error classes of ``helpdesk_common.errors`` (which nameko rebuilds on the
caller's side) with a code particular to intake; these are constructors, not classes.
"""
from helpdesk_common.errors import Forbidden, NotFound


def quarantine_not_found(quarantine_id):
    return NotFound(f"There is no quarantined message {quarantine_id}.", code="quarantine_not_found")


def chat_not_found(chat_id):
    """The answer for a missing chat and for one the caller may not see alike."""
    return NotFound(f"There is no chat {chat_id} (or it is not yours).", code="chat_not_found")


def mail_not_found(mail_id):
    return NotFound(f"There is no outgoing mail {mail_id}.", code="mail_not_found")


def requester_mismatch(what):
    return Forbidden(f"Customers {what} as themselves.", code="requester_mismatch")


def agents_only(what):
    return Forbidden(f"Only agents {what}.", code="agents_only")
