"""Errors of the tickets service.

Callers receive the shared error classes of ``helpdesk_common.errors`` (which nameko rebuilds on the
caller's side) with a code particular to tickets; a subclass here would reach the gateway as an
opaque RemoteError, so these are constructors, not classes.
"""
from helpdesk_common.errors import Conflict, InvalidTransition, NotFound, ValidationFailed


class WorkflowError(ValueError):
    """A workflow file that cannot be used; raised at start-up, never to a caller."""


def ticket_not_found(number):
    return NotFound(f"There is no ticket {number!s} (or you may not see it).", code="ticket_not_found")


def transition_not_allowed(current, target, allowed):
    options = ", ".join(sorted(allowed)) or "none: it is final"
    return InvalidTransition(
        f"A ticket cannot go from {current!r} to {target!r}. From {current!r} it can go to: {options}.",
        details=[{"field": "status", "code": "invalid_transition", "from": current, "to": target,
                  "allowed": sorted(allowed)}],
    )


def unknown_status(target, statuses):
    return ValidationFailed(
        f"{target!r} is not a status of this workflow; use one of: {', '.join(statuses)}.",
        details=[{"field": "status", "code": "invalid_choice", "message": f"unknown status {target!r}"}],
    )


def idempotency_key_reused(key):
    return ValidationFailed(
        f"The Idempotency-Key {key!r} was already used for a different request; use a new key.",
        code="idempotency_key_reused",
    )


def concurrent_change(number):
    return Conflict(f"Ticket {number} was changed by someone else at the same moment; reload and retry.",
                    code="concurrent_change")
