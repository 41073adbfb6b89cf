"""The customer portal: the help centre (knowledge base), the request form, and later the customer's own
requests, served under ``/help`` on the agent workspace's foundations (``helpdesk_gateway.ui``: base
styles, htmx, CSRF, security headers, languages, HTML error pages).

As in the workspace, a page never calls a service itself: it calls the gateway functions the REST routes
call (``api.kb``, ``api.intake``, ``api.tickets``), with the visitor's viewer, so the portal can do nothing
the API cannot. Visitors are anonymous: the knowledge base shows them published public articles only.
"""
import nh3
from flask import Blueprint
from markupsafe import Markup

from ..ui.i18n import LANGUAGES

bp = Blueprint("portal", __name__, url_prefix="/help", template_folder="templates")


def register(app):
    from . import account, asking, help_centre  # noqa: F401  their routes are on bp

    app.register_blueprint(bp)
    app.jinja_env.globals.update(portal_languages=LANGUAGES, category_label=category_label)
    app.jinja_env.filters["marked"] = marked


def category_label(path):
    """``billing/invoices`` as a visitor reads it: "Billing / Invoices"."""
    return " / ".join(part.replace("-", " ").replace("_", " ").capitalize() for part in (path or "").split("/"))


def marked(snippet):
    """A search snippet (escaped text with the matches in ``<mark>``): nothing but ``<mark>`` gets through."""
    return Markup(nh3.clean(snippet or "", tags={"mark"}, attributes={}))
