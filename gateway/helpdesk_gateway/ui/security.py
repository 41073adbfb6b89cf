"""Browser safety in one place: the shared secret, CSRF tokens, and the security headers.

CSRF: a signed double-submit token. Every browser gets a random ``hd_csrf`` cookie; a form carries
HMAC(secret, that cookie, the session cookie). An attacker's page can make the browser send both cookies,
but cannot read them to build the form field, and cannot forge the HMAC without the secret. Binding the
session cookie rotates the token at sign-in and sign-out. Every state-changing request to a UI page
(anything but GET, HEAD, OPTIONS) is checked before its view runs; the REST API is not (bearer tokens
are not sent by browsers on their own).
"""
import hashlib
import hmac
import os
import secrets

from flask import current_app, g, request
from sqlalchemy.exc import IntegrityError

from helpdesk_common.errors import HelpdeskError

from ..models import GatewaySecret

CSRF_COOKIE = "hd_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"  # htmx requests send it (hx-headers on <body>)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

# No inline script or style anywhere: static files only. htmx is configured (meta htmx-config) to need
# neither eval nor its injected indicator style.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


class CsrfRefused(HelpdeskError):
    status = 403
    default_code = "csrf_failed"


def secret_key(sessions):
    """``HELPDESK_SECRET_KEY``, or one made once and kept in the gateway's database, so every worker and
    replica signs alike with no extra set-up step."""
    configured = os.environ.get("HELPDESK_SECRET_KEY")
    if configured:
        return configured
    with sessions() as session:
        record = session.get(GatewaySecret, "secret_key")
        if record is not None:
            return record.value
    try:
        with sessions.begin() as session:
            session.add(GatewaySecret(name="secret_key", value=secrets.token_urlsafe(48)))
    except IntegrityError:
        pass  # another process made it first: read theirs
    with sessions() as session:
        return session.get(GatewaySecret, "secret_key").value


def _nonce():
    nonce = getattr(g, "csrf_nonce", None) or request.cookies.get(CSRF_COOKIE)
    if not nonce or len(nonce) > 100:
        nonce = g.csrf_nonce = secrets.token_urlsafe(24)
        g.set_csrf_cookie = True
    return nonce


def csrf_token():
    """The token for this browser and session (what forms carry in ``csrf_token``)."""
    key = current_app.config["SECRET_KEY"].encode()
    bound = f"{_nonce()}|{g.get('session_cookie') or ''}"
    return hmac.new(key, bound.encode(), hashlib.sha256).hexdigest()


CSRF_EXEMPT = ("portal.embed_submit",)
"""Views that take no CSRF token, each because it acts for no session and reads no cookie (where the token
could not work anyway): the embedded request form, in other sites' frames (``portal/embed.py`` says why)."""


def accepts_files(max_bytes):
    """Marks a view whose form carries files: its body may be up to ``max_bytes`` (the app's limit,
    ``HELPDESK_MAX_BODY_BYTES``, is for JSON). Applied by ``allow_files`` before the CSRF check reads the
    form: set in the view, it came too late, and a form over the app's limit got a bare 413."""

    def mark(view):
        view.max_body_bytes = max_bytes
        return view

    return mark


def allow_files():
    limit = getattr(current_app.view_functions.get(request.endpoint), "max_body_bytes", None)
    if limit:
        request.max_content_length = limit


def check_csrf():
    """Refuse a state-changing request whose token is missing or wrong (nothing has changed yet)."""
    if request.method in SAFE_METHODS or request.endpoint in CSRF_EXEMPT:
        return
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not request.cookies.get(CSRF_COOKIE) or not hmac.compare_digest(sent.encode(), csrf_token().encode()):
        raise CsrfRefused("This form has expired or did not come from this site; nothing was changed. "
                          "Reload the page and try again.")


def secure_cookies_configured():
    """``HELPDESK_SECURE_COOKIES`` set: the gateway is behind TLS (a proxy that terminates it)."""
    return os.environ.get("HELPDESK_SECURE_COOKIES", "").lower() in ("1", "true", "yes")


def secure_cookies():
    return secure_cookies_configured() or request.is_secure


def finish(response):
    """Security headers on every answer; the CSRF cookie when one was made."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        policy = response.headers.setdefault("Content-Security-Policy", CSP)
        if "frame-ancestors 'none'" in policy:  # the pages made to be embedded set their own (portal.embed)
            response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    if g.get("set_csrf_cookie"):
        response.set_cookie(CSRF_COOKIE, g.csrf_nonce, httponly=True, samesite="Lax", secure=secure_cookies(),
                            path="/")
    return response
