"""How a route is declared: once, with what the OpenAPI document needs to describe it.

``operation`` registers the Flask view and records its summary, body and answer models, query
parameters, roles and possible errors; ``openapi.py`` builds the document from these records, so the
document cannot drift from the routes.
"""
from dataclasses import dataclass, field
from typing import Optional

from flask import current_app, g, request

from helpdesk_common.contracts import validate
from helpdesk_common.errors import Forbidden, HelpdeskError, ValidationFailed

OPERATIONS = []
_BY_ENDPOINT = {}


@dataclass
class Operation:
    rule: str
    method: str
    summary: str
    tag: str
    endpoint: str
    description: str = ""
    body: Optional[type] = None
    query: Optional[type] = None
    answer: Optional[type] = None
    answer_status: int = 200
    answer_is_list: bool = False
    roles: tuple = ("admin", "agent", "customer")
    errors: tuple = ()
    headers: dict = field(default_factory=dict)
    public: bool = False


def operation_for(endpoint):
    """The declared operation behind a Flask endpoint (a non-public placeholder for undeclared ones)."""
    if len(_BY_ENDPOINT) != len(OPERATIONS):
        _BY_ENDPOINT.update((record.endpoint, record) for record in OPERATIONS)
    return _BY_ENDPOINT.get(endpoint, _UNDECLARED)


def operation(blueprint, rule, method, *, summary, tag, **meta):
    """Register ``rule`` on ``blueprint`` and describe it for the OpenAPI document."""

    def register(view):
        endpoint = f"{blueprint.name}.{view.__name__}"
        record = Operation(rule=blueprint.url_prefix + rule if blueprint.url_prefix else rule, method=method,
                           summary=summary, tag=tag, endpoint=endpoint,
                           description=(view.__doc__ or "").strip(), **meta)
        OPERATIONS.append(record)
        roles = record.roles

        def guarded(**kwargs):
            if not record.public and g.identity.role not in roles:
                raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.", code="role_not_allowed")
            return view(**kwargs)

        guarded.__name__ = view.__name__
        guarded.__doc__ = view.__doc__
        blueprint.add_url_rule(rule, view.__name__, guarded, methods=[method])
        return view

    return register


_UNDECLARED = Operation(rule="", method="", summary="", tag="", endpoint="", public=False)


class BadRequest(HelpdeskError):
    status = 400
    default_code = "bad_request"


class UnsupportedMediaType(HelpdeskError):
    status = 415
    default_code = "unsupported_media_type"


def json_body():
    """The request's JSON object, or a clear 4xx: wrong media type, malformed JSON, not an object."""
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as JSON with 'Content-Type: application/json'.")
    data = request.get_json(silent=True, cache=False)
    if data is None:
        raise BadRequest("The body is not valid JSON; check quotes, commas and brackets.", code="invalid_json")
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", code="invalid_body",
                               details=[{"field": "(body)", "code": "wrong_type", "message": "expected an object"}])
    return data


def query_args(model):
    """Query parameters validated against ``model``; unknown parameters are refused, not ignored.

    Query strings carry only text, so numbers are parsed from it (lax mode) rather than refused.
    """
    return validate(model, dict(request.args.items()), strict=False)


def services():
    """The RPC pool of this app."""
    return current_app.extensions["helpdesk.rpc"]


def viewer():
    return g.identity.viewer(g.request_id)
