"""Single sign-on with OpenID Connect (Authlib's Flask client): the authorization-code flow, with state
and nonce, against the provider named by ``HELPDESK_OIDC_ISSUER`` (its discovery document).

Accounts are linked by email: the ID token's ``email`` must belong to an enabled account here (and the
provider must not say ``email_verified: false``). An unknown email is refused with a page that says to
ask an administrator for an invitation: single sign-on never creates accounts, so who may work in the
helpdesk (and with which role) stays an administrator's decision, whatever the provider lets in.

Off unless ``HELPDESK_OIDC_ISSUER``, ``HELPDESK_OIDC_CLIENT_ID`` and ``HELPDESK_OIDC_CLIENT_SECRET`` are
set; ``HELPDESK_OIDC_NAME`` names the button ("your organisation's sign-in" by default). The provider
sends the browser back to ``<HELPDESK_PUBLIC_URL or this host>/sign-in/oidc/callback``: register that.
"""
import logging
import os

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import accounts
from . import people
from .people import AgentNotLinked

log = logging.getLogger(__name__)

bp = Blueprint("ui_oidc", __name__, template_folder="templates")

PROVIDER = "helpdesk_oidc"


def configured():
    return all(os.environ.get(name) for name in ("HELPDESK_OIDC_ISSUER", "HELPDESK_OIDC_CLIENT_ID",
                                                  "HELPDESK_OIDC_CLIENT_SECRET"))


def button_name():
    return os.environ.get("HELPDESK_OIDC_NAME") or _("your organisation's sign-in")


def init(app):
    """Register the provider when configured (the sign-in page then offers the button)."""
    app.jinja_env.globals.update(oidc_enabled=configured, oidc_name=button_name)
    if not configured():
        return
    oauth = OAuth(app)
    issuer = os.environ["HELPDESK_OIDC_ISSUER"].rstrip("/")
    oauth.register(PROVIDER, client_id=os.environ["HELPDESK_OIDC_CLIENT_ID"],
                   client_secret=os.environ["HELPDESK_OIDC_CLIENT_SECRET"],
                   server_metadata_url=f"{issuer}/.well-known/openid-configuration",
                   client_kwargs={"scope": "openid email profile", "timeout": 10})


def _client():
    return current_app.extensions["authlib.integrations.flask_client"].create_client(PROVIDER)


def _callback_url():
    base = os.environ.get("HELPDESK_PUBLIC_URL")
    path = url_for("ui_oidc.callback")
    return base.rstrip("/") + path if base else url_for("ui_oidc.callback", _external=True)


def _refused(message, status):
    return render_template("sign_in.html", email="", next=None, error=message), status


@bp.get("/sign-in/oidc")
def start():
    if not configured():
        return _refused(_("Single sign-on is not set up here; sign in with your email and password."), 404)
    try:
        return _client().authorize_redirect(_callback_url())
    except Exception:  # the provider's discovery document could not be read: say so, never a 500
        log.exception("could not reach the OpenID provider")
        return _refused(_("The single sign-on provider cannot be reached just now. Try again in a minute, or "
                          "sign in with your email and password."), 503)


@bp.get("/sign-in/oidc/callback")
def callback():
    if not configured():
        return _refused(_("Single sign-on is not set up here; sign in with your email and password."), 404)
    if request.args.get("error"):
        return _refused(_("The single sign-on provider did not sign you in."), 401)
    try:
        token = _client().authorize_access_token()
    except OAuthError as error:  # wrong or missing state (a forged or replayed callback), bad code, bad token
        log.warning("OpenID sign-in refused: %s", error)
        return _refused(_("This sign-in could not be confirmed; start again."), 401)
    except Exception:
        log.exception("the OpenID provider's token endpoint failed")
        return _refused(_("The single sign-on provider cannot be reached just now. Try again in a minute, or "
                          "sign in with your email and password."), 503)
    claims = token.get("userinfo") or {}
    email = accounts.normal_email(claims.get("email"))
    if not email or claims.get("email_verified") is False:
        return _refused(_("The single sign-on provider did not confirm an email address for you."), 403)
    account = accounts.find_account(current_app.extensions["helpdesk.db"], email=email)
    if account is None:
        return _refused(_("There is no helpdesk account for %(email)s. Ask an administrator to invite you.",
                          email=email), 403)
    try:
        cookie = people.start(account)
    except AgentNotLinked:
        return _refused(_("Your account is not linked to an agent yet: ask an administrator to create the agent "
                          "with your email address."), 403)
    response = redirect(url_for("ui_workspace.tickets"))
    people.set_cookie(response, cookie)
    return response
