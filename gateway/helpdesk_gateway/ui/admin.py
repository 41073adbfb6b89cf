"""Admin pages: people (accounts and invitations), agents, teams, routing rules, custom fields, API tokens.

Admins change; supervisors read (they watch every queue and need to see who is in which team and how the
rules route). Every change calls the gateway function its REST route calls (parity), with the person's
viewer, so the services judge it exactly as they judge an admin token, and is written to the audit log as
that route would write it (:func:`audited`, ``audit.record_change``).
"""
from functools import wraps

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from helpdesk_common.errors import HelpdeskError

from .. import accounts, audit
from ..api.accounts import invite_person, send_invitation
from .i18n import LANGUAGES

bp = Blueprint("ui_admin", __name__, url_prefix="/workspace/admin", template_folder="templates")

READERS = ("admin", "supervisor")
SECTIONS = ["people"]  # the sidebar, in order; each section's module adds itself


@bp.context_processor
def sections():
    return {"admin_sections": SECTIONS}


@bp.before_request
def staff_only():
    if g.get("account") is None:
        return redirect(url_for("ui_signin.sign_in_form", next=request.full_path.rstrip("?")))
    if g.account.role not in READERS:
        abort(403)
    return None


def admins_only(view):
    @wraps(view)
    def checked(*args, **kwargs):
        if g.account.role != "admin":
            abort(403)
        return view(*args, **kwargs)
    return checked


def _db():
    return current_app.extensions["helpdesk.db"]


def audited(endpoint, body=None, **path):
    """Record the change this page just made in the audit log, as the REST operation ``endpoint`` (whose
    gateway function the page called) records it: same action, same target, the same body."""
    audit.record_change(endpoint, url_for(endpoint, **path), {**audit.body_details(body), "via": "workspace"})


def page(template, **context):
    return render_template(f"admin/{template}", may_change=g.account.role == "admin", **context)


@bp.get("/")
def home():
    return redirect(url_for(".people"))


@bp.get("/people")
def people():
    return page("people.html", section="people", people=accounts.list_accounts(_db()), roles=accounts.ACCOUNT_ROLES,
                languages=LANGUAGES, form={})


@bp.post("/people")
@admins_only
def invite():
    """A new account and an invitation mail with a link to choose a password (``POST /accounts/invitations``)."""
    form = {name: request.form.get(name, "").strip() for name in ("email", "name", "role", "language")}
    body = {"email": form["email"], "role": form["role"], "name": form["name"] or None,
            "language": form["language"] or None}
    try:
        invited = invite_person(body)
    except HelpdeskError as refused:
        message = (_("There is already an account for %(email)s.", email=form["email"])
                   if refused.code == "account_exists" else _("Give a valid email address, a role and a language."))
        flash(message, "error")
        return page("people.html", section="people", people=accounts.list_accounts(_db()),
                    roles=accounts.ACCOUNT_ROLES, languages=LANGUAGES, form=form), 422
    audited("accounts.create_invitation", body)
    if not invited["mail_queued"]:
        flash(_("The account for %(email)s is made, but the invitation could not be sent: send it again in a "
                "minute.", email=invited["account"]["email"]), "error")
        return redirect(url_for(".people"))
    flash(_("%(email)s is invited: the mail with the link is on its way.", email=invited["account"]["email"]),
          "success")
    return redirect(url_for(".people"))


@bp.post("/people/<int:account_id>/invitation")
@admins_only
def invite_again(account_id):
    account = accounts.find_account(_db(), account_id=account_id)
    if account is None:
        abort(404)
    send_invitation(account)
    audited("accounts.resend_invitation", account_id=account_id)
    flash(_("%(email)s is invited: the mail with the link is on its way.", email=account.email), "success")
    return redirect(url_for(".people"))


from . import admin_routing, admin_tokens  # noqa: E402,F401  their pages are sections of this blueprint
