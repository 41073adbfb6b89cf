"""API tokens and the audit log, for admins (the gateway owns both; no service is called).

A token is shown once, in the answer that creates it. Revoking one takes effect at once in every gateway
worker (``auth.py``). Every change here is an administrative change, recorded in the audit log
(``audit.after_admin_change``), which admins read at ``GET /audit``.
"""
from datetime import datetime, timedelta
from typing import Literal, Optional

from flask import Blueprint, current_app, jsonify
from pydantic import Field
from sqlalchemy import select

from helpdesk_common.contracts import Contract, View, validate
from helpdesk_common.contracts.audit import AuditEntryView
from helpdesk_common.errors import NotFound, ValidationFailed

from .. import audit
from ..auth import ROLES, SCOPES, create_token, revoke_token
from ..models import ApiToken
from . import json_body, operation, query_args

bp = Blueprint("tokens", __name__, url_prefix="/api/v1")

Scope = Literal["read", "write", "admin"]


class NewToken(Contract):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["admin", "agent", "customer"]
    email: Optional[str] = Field(default=None, max_length=254)
    teams: list[str] = Field(default_factory=list, max_length=50)
    scopes: Optional[list[Scope]] = Field(default=None, min_length=1, max_length=3)
    expires_in_days: Optional[int] = Field(default=90, ge=1, le=3650)  # null: never expires


class TokenView(View):
    id: int
    name: str
    role: str
    email: Optional[str] = None
    teams: list[str] = []
    scopes: list[str]
    created_at: datetime
    expires_at: Optional[datetime] = None
    revoked_at: Optional[datetime] = None
    bootstrap: bool = False


class CreatedToken(TokenView):
    token: str  # shown only here, once


class AuditQuery(Contract):
    limit: int = Field(default=50, ge=1, le=200)
    before: Optional[int] = Field(default=None, ge=1, le=2**63 - 1)
    actor: Optional[str] = Field(default=None, max_length=100)
    action: Optional[str] = Field(default=None, max_length=100)


def _sessions():
    return current_app.extensions["helpdesk.db"]


def _view(record):
    return {"id": record.id, "name": record.name, "role": record.role, "email": record.email,
            "teams": list(record.teams or []), "scopes": list(record.scopes or SCOPES_OF[record.role]),
            "created_at": record.created_at.isoformat(),
            "expires_at": record.expires_at.isoformat() if record.expires_at else None,
            "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
            "bootstrap": bool(record.bootstrap)}


SCOPES_OF = {role: [scope for scope in SCOPES if role == "admin" or scope != "admin"] for role in ROLES}


@operation(bp, "/tokens", "GET", summary="List API tokens", tag="tokens", answer=TokenView, answer_is_list=True,
           roles=("admin",))
def list_tokens():
    """Every token, oldest first, never its secret."""
    return jsonify(read_tokens())


def read_tokens():
    """The REST route's list, and the admin page's (``ui/admin_tokens.py``)."""
    with _sessions()() as session:
        return [_view(record) for record in session.scalars(select(ApiToken).order_by(ApiToken.id))]


@operation(bp, "/tokens", "POST", summary="Create an API token", tag="tokens", body=NewToken, answer=CreatedToken,
           answer_status=201, roles=("admin",), errors=(400, 415, 422))
def create_api_token():
    """The answer's ``token`` is shown this once. ``scopes`` default to all the role may hold (an admin: read,
    write, admin; others: read, write); ``expires_in_days`` to 90 (null: never)."""
    return jsonify(make_token(json_body())), 201


def make_token(body):
    """A new token: its view and, this once, its secret (``token``)."""
    body = validate(NewToken, body)
    lifetime = timedelta(days=body.expires_in_days) if body.expires_in_days is not None else None
    try:
        token_id, secret = create_token(_sessions(), body.name, body.role, body.email, body.teams, body.scopes, lifetime)
    except ValueError as error:
        raise ValidationFailed(f"The request is not valid: {error}.", details=[
            {"field": "scopes" if "scope" in str(error) else "email", "code": "not_allowed", "message": str(error)}])
    with _sessions()() as session:
        return {**_view(session.get(ApiToken, token_id)), "token": secret}


@operation(bp, "/tokens/<int:token_id>", "DELETE", summary="Revoke an API token", tag="tokens", answer=TokenView,
           roles=("admin",), errors=(404,))
def revoke_api_token(token_id):
    """Effective at once, in every gateway worker and replica. Revoking a revoked token changes nothing."""
    return jsonify(revoke(token_id))


def revoke(token_id):
    with _sessions().begin() as session:
        record = revoke_token(None, token_id, session=session)
        if record is None:
            raise NotFound(f"There is no token {token_id}.", code="token_not_found")
        return _view(record)


@operation(bp, "/audit", "GET", summary="The audit log of administrative changes", tag="tokens", query=AuditQuery,
           answer=AuditEntryView, answer_is_list=True, roles=("admin",), errors=(422,))
def audit_log():
    """Newest first: who (``actor``), when (``at``), what (``action``: the method and route, or the operator's
    command; ``target``; ``details``). Page with ``before`` = the last ``id`` you have."""
    query = query_args(AuditQuery)
    return jsonify(audit.entries(_sessions(), query.limit, query.before, query.actor, query.action))
