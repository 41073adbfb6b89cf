"""What other sites embed: the request form and the chat widget, each a page made to live in a frame
(``/help/embed/request``, ``/help/embed/chat``), and a small loader script that puts the frame on the
page (``/static/js/embed.js``):

    <script src="https://help.example.org/static/js/embed.js" data-helpdesk="request" async></script>

Their own Content-Security-Policy: the portal's, but ``frame-ancestors`` lists the sites allowed to embed
them (``HELPDESK_EMBED_ORIGINS``, space-separated origins such as ``https://www.example.org``; unset: this
site only), and no ``X-Frame-Options`` (it cannot name several sites; ``frame-ancestors`` supersedes it).
Every other page keeps ``frame-ancestors 'none'``, so nothing else can be framed (clickjacking).

The embedded form takes no CSRF token (``ui.security.CSRF_EXEMPT``): in another site's frame the browser
sends none of our cookies (SameSite), so a double-submit token cannot work there; and there is nothing to
forge: the view reads no cookie and acts for no session, it opens a request as the address typed, exactly
as the public ``POST /api/v1/intake/web-form`` does for any caller, under intake's limit per address. Its
confirmation is shown at once rather than kept in a session cookie.
"""
import os
import re

from flask import render_template, request

from ..ui.security import CSP, accepts_files
from . import asking, bp

ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
ENDPOINTS = ("portal.embed_form", "portal.embed_submit", "portal.embed_chat")


def allowed_ancestors():
    """``'self'`` and the configured origins (anything that is not a plain origin is left out)."""
    configured = [o.rstrip("/") for o in os.environ.get("HELPDESK_EMBED_ORIGINS", "").split()]
    return ["'self'"] + [origin for origin in configured if ORIGIN.match(origin)]


def embed_csp():
    return CSP.replace("frame-ancestors 'none'", "frame-ancestors " + " ".join(allowed_ancestors()))


@bp.after_request
def framable(response):
    if request.endpoint in ENDPOINTS and response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = embed_csp()  # ui.security.finish keeps it, adds no DENY
    return response


@bp.get("/embed/request")
def embed_form():
    return asking.blank_form(embedded=True)


@bp.post("/embed/request")
@accepts_files(asking.UPLOAD_BYTES)
def embed_submit():
    return asking.take_request(embedded=True)


@bp.get("/embed/chat")
def embed_chat():
    return render_template("portal/embed_chat.html")
