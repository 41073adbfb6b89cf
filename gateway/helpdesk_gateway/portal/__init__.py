"""The customer portal: the help centre (knowledge base), the request form, and later the customer's own
requests, served under ``/help`` on the agent workspace's foundations (``helpdesk_gateway.ui``: base
styles, htmx, CSRF, security headers, languages, HTML error pages).

As in the workspace, a page never calls a service itself: it calls the gateway functions the REST routes
call (``api.kb``, ``api.intake``, ``api.tickets``), with the visitor's viewer, so the portal can do nothing
the API cannot. Visitors are anonymous: the knowledge base shows them published public articles only.
"""
import nh3
from flask import Blueprint
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from ..ui.i18n import LANGUAGES

bp = Blueprint("portal", __name__, url_prefix="/help", template_folder="templates")


def register(app):
    from . import account, asking, downloads, embed, help_centre, satisfaction  # noqa: F401  their routes are on bp

    app.register_blueprint(bp)
    app.jinja_env.globals.update(portal_languages=LANGUAGES, category_label=category_label, rating_label=rating_label)
    app.jinja_env.filters["marked"] = marked


def category_label(path):
    """``billing/invoices`` as a visitor reads it: "Billing / Invoices"."""
    return " / ".join(part.replace("-", " ").replace("_", " ").capitalize() for part in (path or "").split("/"))


RATING_LABELS = {5: _l("very happy"), 4: _l("happy"), 3: _l("neutral"), 2: _l("unhappy"), 1: _l("very unhappy")}


def rating_label(value):
    return RATING_LABELS.get(value, value)


def marked(snippet):
    """A search snippet (escaped text with the matches in ``<mark>``): nothing but ``<mark>`` gets through."""
    return Markup(nh3.clean(snippet or "", tags={"mark"}, attributes={}))
