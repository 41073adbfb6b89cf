"""What the gateway announces about administrative changes (``audit_recorded``) and people's workspace accounts
(``account_changed``)."""
from datetime import datetime
from typing import Optional

from . import View


class AuditEntryView(View):
    """One administrative change: who made it, when, and what (the route or command, the object, details)."""

    id: int
    at: datetime
    actor: str  # token:<id>, bootstrap, account-<id>, agent-<id>, or cli (the operator's command)
    action: str  # e.g. POST /api/v1/teams, token.created, token.revoked, bootstrap.rotated
    target: Optional[str] = None  # the object changed: a path, a token id, an account email
    details: dict = {}
    request_id: Optional[str] = None


class AuditRecorded(View):
    entry: AuditEntryView


class AccountView(View):
    """A person's workspace account as it is now (no password, no session): who they are and their role."""

    id: int
    email: str
    name: Optional[str] = None
    role: str  # admin, supervisor, agent
    language: Optional[str] = None
    disabled: bool = False
    changed_at: datetime  # orders the announcements of one account: the latest tells how it is


class AccountChanged(View):
    account: AccountView
