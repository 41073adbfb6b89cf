"""People's accounts over the API: invite a person (admins), and ask for a password reset (anyone).

The workspace's pages (*Administration → People*, "Forgot your password?") call these same functions, so the
page and the API decide alike: an invitation is an account nobody knows the password of and a mail with a
link valid 7 days; a reset mails a link valid an hour, and the answer is the same whether or not the address
has an account (it must not tell who has one). Links and mails: ``ui/password.py``, ``account_links.py``.
Invitations are administrative changes (audit log, ``audit.py``); resets are rate-limited per address like
every public route that stores or sends something (``ratelimits.COSTLY_PUBLIC``, the page too).
"""
import logging
from typing import Literal, Optional

from flask import Blueprint, current_app, g, jsonify
from pydantic import Field

from helpdesk_common.contracts import Contract, EmailAddress, View, validate
from helpdesk_common.errors import Conflict, HelpdeskError, NotFound, ValidationFailed

from .. import accounts
from . import json_body, operation

log = logging.getLogger(__name__)

bp = Blueprint("accounts", __name__, url_prefix="/api/v1")


class NewInvitation(Contract):
    email: EmailAddress
    role: Literal["admin", "supervisor", "agent"]
    name: Optional[str] = Field(default=None, max_length=200)
    language: Optional[Literal["en", "nl", "sv"]] = None


class AccountView(View):
    id: int
    email: str
    role: str
    name: Optional[str] = None
    language: Optional[str] = None


class InvitationView(View):
    account: AccountView
    mail_queued: bool  # false: the account is made but intake could not take the mail; send it again


class PasswordResetRequest(Contract):
    email: str = Field(min_length=1, max_length=254)


class PasswordResetAccepted(View):
    status: Literal["accepted"]
    message: str


RESET_ANSWER = {"status": "accepted", "message": "If there is an account for this address, a link to set a new "
                                                 "password is on its way; it works once, for an hour."}


def _db():
    return current_app.extensions["helpdesk.db"]


def _account_view(account):
    return {"id": account.id, "email": account.email, "role": account.role, "name": account.name,
            "language": account.language}


def send_invitation(account):
    """Mail ``account`` its invitation link (raises when intake cannot take the mail)."""
    from ..ui.password import send_link  # the links and mail texts live with the pages that open them

    inviter = getattr(g, "account", None)
    send_link(account, "invite", inviter=(inviter.name or inviter.email) if inviter is not None else None)


def invite_person(body):
    """Make the account and mail the invitation: ``{"account": ..., "mail_queued": bool}``; 409
    ``account_exists`` when the address has an account."""
    invitation = validate(NewInvitation, body)
    try:
        account = accounts.invite_account(_db(), invitation.email, invitation.role, name=invitation.name,
                                          language=invitation.language)
    except ValueError as refused:
        if "already" in str(refused):
            raise Conflict(f"There is already an account for {invitation.email}.", code="account_exists")
        raise ValidationFailed(f"The request is not valid: {refused}.")
    try:
        send_invitation(account)
        queued = True
    except HelpdeskError:
        log.exception("could not queue the invitation mail for account %s", account.id)
        queued = False
    return {"account": _account_view(account), "mail_queued": queued}


def ask_password_reset(email):
    """Mail the account with ``email`` (if any) a reset link. Raises only when intake cannot take the mail."""
    from ..ui.password import send_link

    account = accounts.find_account(_db(), email=email) if "@" in email else None
    if account is not None:
        send_link(account, "reset")


@operation(bp, "/accounts/invitations", "POST", summary="Invite a person to the workspace", tag="accounts",
           body=NewInvitation, answer=InvitationView, answer_status=201, roles=("admin",),
           errors=(400, 409, 413, 415, 422))
def create_invitation():
    """An account with ``role`` (admin, supervisor, agent) whose password nobody knows, and a mail with a link
    (7 days, once) to choose it. An agent's account is linked to the routing agent with the same email at
    their first sign-in. ``mail_queued`` false: the account exists, resend with ``POST
    /accounts/{id}/invitation``."""
    return jsonify(invite_person(json_body())), 201


@operation(bp, "/accounts/<int:account_id>/invitation", "POST", summary="Send an invitation again",
           tag="accounts", answer=InvitationView, answer_status=202, roles=("admin",), errors=(404, 503))
def resend_invitation(account_id):
    """A new link (the older ones stay valid until the password is set)."""
    account = accounts.find_account(_db(), account_id=account_id)
    if account is None:
        raise NotFound(f"There is no account {account_id}.", code="account_not_found")
    send_invitation(account)
    return jsonify({"account": _account_view(account), "mail_queued": True}), 202


@operation(bp, "/password-resets", "POST", summary="Ask for a password reset link", tag="accounts",
           body=PasswordResetRequest, answer=PasswordResetAccepted, answer_status=202, public=True,
           errors=(400, 413, 415, 422, 503))
def create_password_reset():
    """Mails the account with this ``email`` a link to set a new password (an hour, once). The answer is the
    same whether or not there is such an account; 503 when the mail could not be queued (retry in a minute).
    Limited per address (429 ``rate_limited``)."""
    request = validate(PasswordResetRequest, json_body())
    ask_password_reset(request.email.strip())
    return jsonify(RESET_ANSWER), 202
