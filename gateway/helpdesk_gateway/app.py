"""The Flask application: ``create_app()`` is what gunicorn and the tests start."""
import time

from flask import Flask, g, request
from sqlalchemy.orm import sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

from helpdesk_common.adapters.database import engine_for

from . import audit, errors, observability, portal, ratelimits, ui
from .api import intake, kb, operation_for, refuse_nul_in_address, routing, tickets
from .api import chat, contacts  # noqa: I001  after the others: their routes come last in the OpenAPI document
from .api import surveys  # noqa: I001  last in the OpenAPI document
from .api import attachments, canned_replies, notifications, presence, problems, saved_reports, ticket_links
from .api import reports  # noqa: I001
from .api import tokens  # noqa: I001
from .api import accounts  # noqa: I001
from .api import organisations  # noqa: I001
from .auth import ANONYMOUS, Authenticator
from .batching import BatchCaller
from .rpc import RpcPool
from .settings import Settings


def create_app(settings=None):
    """Build the gateway. ``settings`` defaults to the environment (see ``Settings``)."""
    settings = settings or Settings()
    app = Flask(__name__)
    app.config.update(HELPDESK_SETTINGS=settings, MAX_CONTENT_LENGTH=settings.max_body_bytes)
    app.json.sort_keys = False  # keep the contracts' field order: number and subject first
    sessions = sessionmaker(engine_for(settings.database_url), expire_on_commit=False)
    authenticator = Authenticator(sessions, settings.bootstrap_token, settings.token_cache_seconds)
    app.extensions["helpdesk.db"] = sessions
    rpc = app.extensions["helpdesk.rpc"] = RpcPool(settings.amqp_uri, settings.rpc_pool_size, settings.rpc_timeout)
    app.extensions["helpdesk.ticket_batches"] = BatchCaller(rpc, "tickets", "create_tickets",
                                                            lanes=settings.ticket_batch_lanes,
                                                            timeout=settings.rpc_timeout + 5)
    if settings.proxy_hops:  # behind that many reverse proxies: the client's address is in X-Forwarded-For
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)
    ratelimits.create_limiter(app, settings)  # before authentication: made-up tokens are counted too
    relay = audit.start_relay(app, settings)

    @app.before_request
    def authenticate():
        g.started = time.perf_counter()
        relay.ensure_running()  # in each worker (gunicorn forks after the app is built)
        g.request_id = observability.request_id(request.headers.get("X-Request-ID"))
        refuse_nul_in_address()
        if request.url_rule is None:
            return None  # unknown addresses answer 404, with or without a token
        if request.blueprint in ui.BLUEPRINTS or request.endpoint == "static":
            g.identity = ANONYMOUS  # pages: the person's session decides (ui.people), not a bearer token
            return None
        header = request.headers.get("Authorization")
        if header is None and operation_for(request.endpoint).public:
            g.identity = ANONYMOUS  # public routes serve visitors; a token, when sent, still counts
            return None
        g.identity = authenticator.identify(header)
        return None

    @app.after_request
    def finish(response):
        if "identity" in g:
            response = audit.after_admin_change(response)
        response.headers["X-Request-ID"] = g.get("request_id", "")
        observability.secure_headers(request, response)
        if "started" in g:
            observability.observe(request, response, g.started)
        return response

    app.register_blueprint(tickets.bp)
    app.register_blueprint(intake.bp)
    app.register_blueprint(routing.bp)
    app.register_blueprint(kb.bp)
    app.register_blueprint(contacts.bp)
    app.register_blueprint(organisations.bp)
    app.register_blueprint(chat.bp)
    app.register_blueprint(surveys.bp)
    app.register_blueprint(ticket_links.bp)
    app.register_blueprint(canned_replies.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(presence.bp)
    app.register_blueprint(attachments.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(problems.bp)
    app.register_blueprint(saved_reports.bp)
    app.register_blueprint(tokens.bp)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(observability.bp)
    ui.register(app)
    portal.register(app)
    errors.register(app, page=ui.error_page)
    return app
