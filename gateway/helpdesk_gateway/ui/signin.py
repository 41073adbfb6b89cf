"""Sign in and out; the gateway root sends people to the sign-in or to their tickets."""
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import accounts
from . import people
from .people import AgentNotLinked

bp = Blueprint("ui_signin", __name__, template_folder="templates")


def _safe_next(target):
    """Only a path on this site (never another host: an open redirect helps phishing)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.get("/")
def root():
    return redirect(url_for("ui_workspace.tickets") if g.get("account") else url_for("ui_signin.sign_in_form"))


@bp.get("/sign-in")
def sign_in_form():
    if g.get("account"):
        return redirect(url_for("ui_workspace.tickets"))
    return render_template("sign_in.html", email="", next=_safe_next(request.args.get("next")))


@bp.post("/sign-in")
def sign_in():
    email, password = request.form.get("email", ""), request.form.get("password", "")
    target = _safe_next(request.form.get("next"))
    try:
        account = accounts.sign_in(current_app.extensions["helpdesk.db"], email, password)
        token = people.start(account)
    except accounts.SignInThrottled as refused:
        if refused.code == "account_locked":
            message = _("Too many failed sign-ins: this account is locked. Try again in %(minutes)s minutes.",
                        minutes=max(1, (refused.seconds + 59) // 60))
        else:
            message = _("Too many failed sign-ins: wait %(seconds)s seconds before the next try.",
                        seconds=refused.seconds)
        return _form_again(email, target, message, 429)
    except accounts.SignInRefused:
        return _form_again(email, target, _("The email or password is not right."), 401)
    except AgentNotLinked:
        return _form_again(email, target, _("Your account is not linked to an agent yet: ask an administrator "
                                            "to create the agent with your email address."), 403)
    response = redirect(target or url_for("ui_workspace.tickets"))
    people.set_cookie(response, token)
    return response


def _form_again(email, target, message, status):
    return render_template("sign_in.html", email=email, next=target, error=message), status


@bp.post("/sign-out")
def sign_out():
    people.end()
    flash(_("You are signed out."), "info")
    response = redirect(url_for("ui_signin.sign_in_form"))
    people.clear_cookie(response)
    return response
