"""Errors that cross service boundaries.

Every error a caller can act on is a :class:`HelpdeskError` with a stable ``code``, a message a person
can act on, an HTTP status the gateway uses, and optional ``details`` (per-field problems, say).
Every subclass is listed in :data:`REMOTE_ERRORS` as it is defined; the nameko adapters
(:mod:`helpdesk_common.adapters`) register them with nameko, so an RPC caller gets the same class back,
not a bare RemoteError.
"""

REMOTE_ERRORS = []
"""Every :class:`HelpdeskError` class, in the order defined (the adapters register them with nameko)."""
_LISTENERS = []


def on_remote_error_defined(listener):
    """Call ``listener(cls)`` for every HelpdeskError class defined so far and from now on."""
    _LISTENERS.append(listener)
    for kind in REMOTE_ERRORS:
        listener(kind)


def _defined(kind):
    REMOTE_ERRORS.append(kind)
    for listener in _LISTENERS:
        listener(kind)


class HelpdeskError(Exception):
    """Base of all errors meant for the caller. Subclasses fix ``status`` and a default ``code``."""

    status = 400
    default_code = "bad_request"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _defined(cls)

    def __init__(self, message, code=None, details=None):
        # The three args are what nameko serialises, so the instance can be rebuilt on the other side.
        super().__init__(message, code or self.default_code, details or [])
        self.message = message
        self.code = code or self.default_code
        self.details = details or []

    def __str__(self):
        return self.message

    def to_dict(self):
        """The JSON body the gateway returns."""
        body = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


_defined(HelpdeskError)


class ValidationFailed(HelpdeskError):
    status = 422
    default_code = "validation_failed"


class NotFound(HelpdeskError):
    status = 404
    default_code = "not_found"


class Conflict(HelpdeskError):
    status = 409
    default_code = "conflict"


class InvalidTransition(HelpdeskError):
    status = 409
    default_code = "invalid_transition"


class Forbidden(HelpdeskError):
    status = 403
    default_code = "forbidden"


def to_wire(error):
    """An error as plain data, for answers that carry one result or error per item of a batch."""
    return {"type": type(error).__name__, "message": error.message, "code": error.code, "details": error.details}


def from_wire(data):
    """The error :func:`to_wire` described, rebuilt as the same class (or a HelpdeskError)."""
    kind = _BY_NAME.get(data.get("type"), HelpdeskError)
    return kind(data.get("message", ""), code=data.get("code"), details=data.get("details"))


_BY_NAME = {kind.__name__: kind for kind in (HelpdeskError, ValidationFailed, NotFound, Conflict,
                                              InvalidTransition, Forbidden)}

EXPECTED_ERRORS = (HelpdeskError,)
"""Pass to ``@rpc(expected_exceptions=...)`` so nameko does not log these as crashes."""
