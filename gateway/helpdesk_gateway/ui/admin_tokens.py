"""Admin page for API tokens: list, create (role, scopes, expiry; the secret shown this once), revoke.

Each action calls the function its REST route calls (``api.tokens.read_tokens``, ``make_token``,
``revoke``: ``GET``/``POST /api/v1/tokens``, ``DELETE /api/v1/tokens/{id}``) and is written to the audit
log as that route writes it (``admin.audited``). The new secret is rendered in the answer to the POST
itself, never put in a flash message (Flask's flash cookie is signed, not encrypted) nor in an address.
"""
from flask import flash, render_template, request, url_for, redirect
from flask_babel import gettext as _, lazy_gettext as _l

from helpdesk_common.errors import HelpdeskError

from ..api.tokens import make_token, read_tokens, revoke
from ..auth import ROLES, SCOPES
from .admin import SECTIONS, admins_only, audited, bp, page
from .admin_routing import refused

SECTIONS.append("tokens")
EXPIRIES = (30, 90, 365)
SCOPE_LABELS = {"read": _l("read"), "write": _l("write"), "admin": _l("administer")}


def _form_body(form):
    """The REST route's body from the form (``NewToken``: the route validates it)."""
    expiry = form.get("expires_in_days", "90")
    teams = [team.strip() for team in form.get("teams", "").split(",") if team.strip()]
    return {"name": form.get("name", "").strip(), "role": form.get("role", ""),
            "email": form.get("email", "").strip() or None, "teams": teams,
            "scopes": form.getlist("scopes") or None,
            "expires_in_days": None if expiry == "never" else int(expiry) if expiry.isdigit() else expiry}


def _tokens_page(form=None, created=None, status=200):
    return page("tokens.html", section="tokens", tokens=read_tokens(), roles=ROLES, scopes=SCOPES,
                scope_labels=SCOPE_LABELS,
                expiries=EXPIRIES, form=form or {}, created=created), status


@bp.get("/tokens")
def tokens():
    return _tokens_page()


@bp.post("/tokens")
@admins_only
def create_token():
    body = _form_body(request.form)
    try:
        created = make_token(body)
    except HelpdeskError as error:
        flash(refused(error), "error")
        return _tokens_page({**request.form.to_dict(), "scopes": request.form.getlist("scopes")}, status=422)
    audited("tokens.create_api_token", body)
    return _tokens_page(created=created, status=201)


@bp.post("/tokens/<int:token_id>/revoke")
@admins_only
def revoke_token(token_id):
    revoke(token_id)
    audited("tokens.revoke_api_token", token_id=token_id)
    flash(_("The token is revoked: it opens nothing from now on."), "success")
    return redirect(url_for(".tokens"))
