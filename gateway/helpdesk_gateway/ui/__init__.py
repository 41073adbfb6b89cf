"""The web UI: the agent workspace now, the customer portal later, on one set of foundations.

Server-rendered pages (Jinja2, autoescaped), made lively with htmx and its SSE extension (pinned files in
``static/vendor``). No business logic here: every page calls the same gateway functions as the REST API
(``helpdesk_gateway.api``), with the signed-in person's viewer, so the services judge a person exactly as
they judge a token, and the UI can do nothing the API cannot.

``register(app)`` wires it in: sessions (``people``), CSRF and security headers (``security``), languages
and time zones (``i18n``), versioned static files, HTML error pages (``pages``) and the blueprints.
"""
import hashlib
import os
from functools import lru_cache

from flask import current_app, request, url_for
from flask.globals import request_ctx

from ..api import refuse_nul_in_form

BLUEPRINTS = ("ui_signin", "ui_workspace", "ui_preferences", "ui_password", "ui_admin", "ui_oidc", "portal",
              "ui_chats")
"""The blueprints whose addresses are pages: signed in by session cookie, CSRF-checked, HTML errors."""

STATIC_MAX_AGE = 365 * 24 * 3600


def register(app):
    from . import admin, chat_console, i18n, oidc, password, people, preferences, security, signin, texts, workspace
    from . import canned_page, dashboard, notices, ticket_actions  # noqa: F401  their views join the workspace's blueprint

    app.config.update(SESSION_COOKIE_NAME="hd_flash", SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=security.secure_cookies_configured())  # Flask's cookie: flash messages, OIDC state
    i18n.init(app)
    texts.install(app)
    oidc.init(app)

    @app.before_request
    def ui_before():
        if request.blueprint not in BLUEPRINTS:
            return None
        if not app.config.get("SECRET_KEY"):  # at the first page, not at start: the database may be migrated later
            app.config["SECRET_KEY"] = security.secret_key(app.extensions["helpdesk.db"])
            # Flask opened this request's session before the key existed: open it again, with the key.
            request_ctx._session = app.session_interface.open_session(app, request)  # Flask pinned: 3.1
        people.load()
        security.allow_files()
        security.check_csrf()
        refuse_nul_in_form()
        return None

    @app.after_request
    def ui_after(response):
        if request.endpoint == "static" and request.args.get("v"):
            # Versioned addresses change with the file's content, so browsers may keep them for a year.
            response.cache_control.public = True
            response.cache_control.max_age = STATIC_MAX_AGE
            response.cache_control.immutable = True
        return security.finish(response)

    app.jinja_env.globals.update(asset=asset_url, csrf_token=security.csrf_token, csrf_field=security.CSRF_FIELD)
    app.register_blueprint(signin.bp)
    app.register_blueprint(workspace.bp)
    app.register_blueprint(preferences.bp)
    app.register_blueprint(password.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(oidc.bp)
    app.register_blueprint(chat_console.bp)


@lru_cache(maxsize=256)
def _digest(path):
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()[:12]


def asset_url(filename):
    """``/static/<filename>?v=<content hash>``: a new address whenever the file changes."""
    path = os.path.join(current_app.static_folder, filename)
    return url_for("static", filename=filename, v=_digest(path))


def error_page(status, code, message):
    from .pages import error_page as page

    return page(status, code, message)
