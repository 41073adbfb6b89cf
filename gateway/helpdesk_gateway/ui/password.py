"""Forgotten passwords and invitations: a one-time link by mail, and the page that sets the password.

The mail goes out through the platform's own outgoing mail: intake's queue (``send_account_mail`` over
RPC), sent, retried and shown to operators like every other mail. The gateway writes the text, in the
person's language, because only it knows the link. Links are made and checked by ``account_links``.

Links point at ``HELPDESK_PUBLIC_URL`` when it is set (it should be, in production): built from the
request's Host header alone, an attacker who asks a reset for a victim with a forged Host would have the
victim mailed a link to the attacker's site.
"""
import logging
import os

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import force_locale, get_locale, gettext as _

from helpdesk_common.database import utcnow
from helpdesk_common.errors import HelpdeskError

from .. import account_links, accounts
from ..api import services
from .i18n import LANGUAGES
from .security import secret_key

log = logging.getLogger(__name__)

bp = Blueprint("ui_password", __name__, template_folder="templates")


def _db():
    return current_app.extensions["helpdesk.db"]


def _secret():
    # Set at the first page (ui/__init__.py); an API call (api/accounts.py) may come before any page.
    return current_app.config.get("SECRET_KEY") or secret_key(_db())


def link_for(account, purpose):
    token = account_links.make(_secret(), purpose, account.id, account.password_hash, utcnow())
    path = url_for("ui_password.set_form", token=token)
    base = os.environ.get("HELPDESK_PUBLIC_URL") or request.host_url
    return base.rstrip("/") + path


def send_link(account, purpose, inviter=None):
    """Mail ``account`` a link to set their password ("reset" or "invite"), in their language."""
    language = account.language if account.language in LANGUAGES else str(get_locale() or "en")
    link = link_for(account, purpose)
    with force_locale(language):
        if purpose == "invite":
            subject = _("You are invited to the helpdesk")
            body = _("Hello %(name)s,\n\n%(inviter)s has made you an account on the helpdesk (%(email)s).\n"
                     "Choose your password here; the link works once, for 7 days:\n\n%(link)s\n",
                     name=account.name or account.email, inviter=inviter or _("An administrator"),
                     email=account.email, link=link)
        else:
            subject = _("Set a new password for the helpdesk")
            body = _("Hello %(name)s,\n\nSomeone (we hope you) asked to set a new password for %(email)s.\n"
                     "Choose it here; the link works once, for one hour:\n\n%(link)s\n\n"
                     "If you did not ask for this, ignore this mail: your password stays as it is.\n",
                     name=account.name or account.email, email=account.email, link=link)
    services().call("intake", "send_account_mail", {"to": account.email, "name": account.name,
                                                    "subject": subject, "body": body, "language": language})


@bp.get("/password/forgot")
def forgot_form():
    return render_template("password_forgot.html", email="")


@bp.post("/password/forgot")
def forgot():
    """The same answer whether or not there is an account: the page must not tell who has one."""
    from ..api.accounts import ask_password_reset  # the REST route's function (POST /api/v1/password-resets)

    email = request.form.get("email", "").strip()
    try:
        ask_password_reset(email)
    except HelpdeskError:
        log.exception("could not queue a password-reset mail")
        flash(_("The mail could not be sent just now. Try again in a minute."), "error")
        return render_template("password_forgot.html", email=email), 503
    return render_template("password_forgot.html", email=email, sent=True)


def _account_of(token):
    parsed = account_links.parse(token)
    account = accounts.find_account(_db(), account_id=parsed[1]) if parsed else None
    if account is None or not account_links.check(_secret(), token, account.password_hash, utcnow()):
        return None
    return account


def _dead_link():
    return render_template("password_set.html", dead=True), 410


@bp.get("/password/set/<token>")
def set_form(token):
    account = _account_of(token)
    if account is None:
        return _dead_link()
    return render_template("password_set.html", account=account, token=token, minimum=accounts.MIN_PASSWORD)


@bp.post("/password/set/<token>")
def set_password(token):
    account = _account_of(token)
    if account is None:
        return _dead_link()
    password, again = request.form.get("password", ""), request.form.get("password_again", "")
    error = None
    if len(password) < accounts.MIN_PASSWORD:
        error = _("A password needs at least %(count)s characters.", count=accounts.MIN_PASSWORD)
    elif password != again:
        error = _("The two passwords are not the same.")
    if error:
        return render_template("password_set.html", account=account, token=token, error=error,
                               minimum=accounts.MIN_PASSWORD), 422
    accounts.set_password(_db(), account.id, password)  # the hash changes: this link and older ones are dead
    flash(_("Your password is set. Sign in with it."), "success")
    return redirect(url_for("ui_signin.sign_in_form"))
