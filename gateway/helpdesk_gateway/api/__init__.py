"""How a route is declared: once, with what the OpenAPI document needs to describe it.

``operation`` registers the Flask view and records its summary, body and answer models, query
parameters, roles and possible errors; ``openapi.py`` builds the document from these records, so the
document cannot drift from the routes.

Authorization is declared here too, in three parts:

- **credential**: a bearer token (the default), none (``public=True``: visitors without a token, and a
  token still counts when sent), or the sender's webhook signature (routes that declare the signature
  header);
- **roles**: which token roles may call it; the gateway refuses the others (403 ``role_not_allowed``);
- **scope**: on what the caller may act (``SCOPES``). The gateway cannot judge scope (it does not own
  tickets, queues, agents, contacts or chats), so it passes the caller's viewer to every service call
  that acts on scoped data and the owning service checks it in its domain code; the declaration is what
  the OpenAPI document publishes (``x-access``) and what the authorization matrix test holds every route
  to (``Operation.access``).
"""
from dataclasses import dataclass, field
from typing import Optional

from flask import current_app, g, request

from helpdesk_common.contracts import MAX_RECORD_ID, validate
from helpdesk_common.errors import Forbidden, HelpdeskError, NotFound, ValidationFailed
from helpdesk_common.webhooks import SIGNATURE_HEADER

OPERATIONS = []
_BY_ENDPOINT = {}

SCOPES = {
    "none": "No per-object limit: any caller with an allowed role.",
    "own": "In the caller's own name only: a customer's requester (or chat) is their token's address, with no "
           "other identifiers; a customer's channel, team and priority are ignored.",
    "list": "A list or search filtered to what the caller may see; never refused for its content.",
    "ticket": "The ticket in the path: admins any; agents the tickets of their token's teams or of no team "
              "(all, when the token names no team); customers their own. Others get the 404 of a missing "
              "ticket.",
    "team_queue": "Queues of the caller's teams (and untriaged tickets); another team's: 403 team_not_allowed.",
    "own_agent": "The caller's own agent record (the agent with the token's email); admins any: "
                 "403 not_your_agent otherwise.",
    "contact": "A contact with a ticket the caller may see, or with no ticket yet; others 404 contact_not_found.",
    "chat": "A chat the caller takes part in (its customer by chat token or bearer token, the agent who joined); "
            "admins and agents without team limits any; team-limited agents also waiting chats (not routed "
            "to any team yet). Others 404 chat_not_found.",
}
"""What ``scope`` values mean; scoped ones (all but none, own and list) are judged by the owning service."""

UNSCOPED = ("none", "own", "list")

ACTORS = ("admin", "team_agent", "other_agent", "owner", "other_customer", "anonymous")
"""Who the authorization matrix names: an admin; an agent of the object's team (for a chat the agent who
joined it, for an agent record that agent); an agent limited to another team; the customer the object
belongs to; another customer; a visitor without credentials."""

ACTOR_ROLES = {"admin": "admin", "team_agent": "agent", "other_agent": "agent", "owner": "customer",
               "other_customer": "customer", "anonymous": None}


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
    media_type: str = "application/json"  # of the success answer (/metrics: Prometheus text)
    also_media_types: tuple = ()  # other media types the success answer may take (a report as text/csv)
    other_answers: dict = field(default_factory=dict)  # status -> model, for answers that are not errors (503 of /health)
    roles: tuple = ("admin", "agent", "customer")
    errors: tuple = ()
    headers: dict = field(default_factory=dict)
    public: bool = False
    scope: Optional[str] = None

    def __post_init__(self):
        if self.scope is None:  # a ticket number in the path makes a route act on that ticket
            self.scope = "ticket" if "<number>" in self.rule else "none"
        if self.scope not in SCOPES:
            raise ValueError(f"{self.endpoint}: unknown scope {self.scope!r}; one of {', '.join(SCOPES)}")

    @property
    def token_scope(self):
        """The scope a token needs here (``auth.SCOPES``): ``admin`` on routes only admins may call, ``read`` on
        other GETs, ``write`` on other changes."""
        if self.roles == ("admin",):
            return "admin"
        return "read" if self.method == "GET" else "write"

    @property
    def credential(self):
        """``token``, ``none`` (public) or ``signature`` (a webhook: its sender signs each request; such routes
        declare the signature header, and that declaration is what says so)."""
        if SIGNATURE_HEADER in self.headers:
            return "signature"
        return "none" if self.public else "token"

    def access(self, actor):
        """The declared verdict for one of ``ACTORS``: ``allow`` (the call is taken: a 2xx, or a 4xx about the
        request itself) or ``deny`` (401, 403, or the 404 of something hidden)."""
        role = ACTOR_ROLES[actor]
        if self.credential == "signature":
            return "deny"  # no token opens a webhook, only the sender's signature
        if role is None:  # a visitor: only public routes, and only those not about somebody's things
            return "allow" if self.public and self.scope in UNSCOPED else "deny"
        if role not in self.roles:
            return "deny"
        if self.scope in UNSCOPED or actor in ("admin", "team_agent", "owner"):
            return "allow"
        return "deny"

    def matrix(self):
        return {actor: self.access(actor) for actor in ACTORS}


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
            # Flask's int converter takes any number of digits, but an id beyond 64 bits names no record and
            # the databases cannot compare with it (SQLite raises OverflowError: a 500): a plain 404.
            if any(isinstance(value, int) and value > MAX_RECORD_ID for value in kwargs.values()):
                raise NotFound("There is nothing at this address; see /api/openapi.json for the routes.",
                               code="not_found")
            # Public routes serve visitors (ANONYMOUS); a token sent to them still has to have an allowed role.
            if g.identity.role not in roles and not (record.public and g.identity.role == "anonymous"):
                raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.", code="role_not_allowed")
            if g.identity.role != "anonymous" and record.token_scope not in g.identity.scopes:
                raise Forbidden(f"This token lacks the scope {record.token_scope!r}; ask for a token with it.",
                                code="scope_not_allowed")
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
    data = request.get_json(silent=True, cache=True)  # kept: the audit log records admin changes (audit.py)
    if data is None:
        raise BadRequest("The body is not valid JSON; check quotes, commas and brackets.", code="invalid_json")
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", code="invalid_body",
                               details=[{"field": "(body)", "code": "wrong_type", "message": "expected an object"}])
    where = nul_at(data)
    if where is not None:
        raise ValidationFailed(f"{where} holds a NUL character (\\u0000), which no text may hold; remove it.",
                               code="invalid_character",
                               details=[{"field": where, "code": "invalid_character", "message": "holds a NUL"}])
    return data


def nul_at(value, path="(body)"):
    """Where in ``value`` (a JSON document) a NUL character hides, as a field path, or None.

    No text here may hold one: PostgreSQL stores none (psycopg refuses the statement, and JSON columns refuse
    ``\\u0000``), so a NUL let through would fail deep in a service as a 500 (found by tests/test_fuzz.py)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        where = str(key) if path == "(body)" else f"{path}.{key}"
        if isinstance(key, str) and "\x00" in key:
            return where
        found = nul_at(item, where)
        if found is not None:
            return found
    return None


def refuse_nul_in_address():
    """A 422 for a NUL in the path or the query (pages and API alike): see ``nul_at``."""
    refuse_nul("(path)" if "\x00" in request.path else nul_at(request.args.to_dict(flat=False), "query"))


def refuse_nul_in_form():
    """The same for a posted form (the pages': the API takes JSON), once its view's size limit is set."""
    refuse_nul(nul_at(request.form.to_dict(flat=False), "form"))


def refuse_nul(where):
    if where is not None:
        raise ValidationFailed(f"{where} holds a NUL character (%00), which no text may hold; remove it.",
                               code="invalid_character",
                               details=[{"field": where, "code": "invalid_character", "message": "holds a NUL"}])


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
