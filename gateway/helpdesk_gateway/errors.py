"""Every error leaves the gateway with a stable code, never a bare 500: as JSON from the API, as an HTML
page from the web UI's pages (``page``, given by ``helpdesk_gateway.ui``)."""
import logging

from flask import g, jsonify, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from helpdesk_common.errors import HelpdeskError

from . import ratelimits

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: ("bad_request", "The request is malformed."),
    404: ("not_found", "There is nothing at this address; see /api/openapi.json for the routes."),
    405: ("method_not_allowed", "This address does not accept that method; see /api/openapi.json."),
    413: ("payload_too_large", "The body is larger than this server accepts ({limit} bytes)."),
    429: ("rate_limited", "Too many requests from this token or address; retry after the seconds in Retry-After."),
}


def _json_error(status, code, message, details=None, headers=None):
    body = {"code": code, "message": message}
    if details:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


DRAIN_LIMIT = 64 * 1024 * 1024


def _drain_body():
    """Read and drop an oversized body, so the client, still sending, receives our 413 instead of a
    reset connection. Beyond DRAIN_LIMIT the connection is closed after all."""
    stream = request.environ.get("wsgi.input")
    remaining = min(request.content_length or DRAIN_LIMIT, DRAIN_LIMIT)
    try:
        while remaining > 0:
            chunk = stream.read(min(65536, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
    except Exception:  # the client went away: nothing left to answer
        pass


def register(app, page=lambda status, code, message: None):
    @app.errorhandler(HelpdeskError)
    def helpdesk_error(error):
        answer = page(error.status, error.code, error.message)
        if answer is not None:
            return answer
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        if getattr(error, "retry_after", None):
            headers = {"Retry-After": str(error.retry_after)}
        return _json_error(error.status, error.code, error.message, error.details, headers)

    @app.errorhandler(HTTPException)
    def http_error(error):
        if error.code == 413:
            _drain_body()
        code, message = HTTP_CODES.get(error.code, ("http_error", error.description))
        message = message.format(limit=request.max_content_length)  # the app's, or a view's own (files)
        answer = page(error.code, code, message)
        if answer is not None:
            return answer
        headers = {"Allow": ", ".join(error.valid_methods)} if getattr(error, "valid_methods", None) else None
        if error.code == 429:
            headers = {"Retry-After": str(ratelimits.retry_after(app))}
        return _json_error(error.code, code, message, headers=headers)

    @app.errorhandler(DBAPIError)
    def database_error(error):
        """The gateway's own database unreachable (restarting, failing over) is a 503 to retry, not a 500:
        the soak (tests/soak.py) restarts PostgreSQL under load. Any other database error stays a 500."""
        if not (error.connection_invalidated or type(error.orig).__name__ in ("OperationalError", "InterfaceError")):
            return unexpected(error)
        log.warning("the gateway's database is unreachable: %s", str(error.orig).strip().splitlines()[0:1])
        message = "The gateway's database cannot be reached right now; retry shortly."
        answer = page(503, "database_unavailable", message)
        if answer is not None:
            return answer
        return _json_error(503, "database_unavailable", message, headers={"Retry-After": "1"})

    @app.errorhandler(Exception)
    def unexpected(error):
        request_id = getattr(g, "request_id", None)
        log.exception("unexpected error in request %s", request_id)
        answer = page(500, "internal_error", f"Something went wrong on our side; quote request id {request_id}.")
        if answer is not None:
            return answer
        return _json_error(500, "internal_error",
                           f"Something went wrong on our side; quote request id {request_id} when reporting it.")
