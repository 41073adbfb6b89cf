"""app.py, errors.py, api/__init__.py and openapi.py through Flask's test client.

The broker address is a port nothing listens on, so no service ever answers: every request here is
decided by the gateway itself (authentication, routing, validation, error handling).
"""
import re

import pytest

from helpdesk_common.errors import NotFound
from helpdesk_gateway.app import create_app
from helpdesk_gateway.auth import create_token
from helpdesk_gateway.settings import Settings
from helpdesk_gateway.ui import BLUEPRINTS
from helpdesk_common.testing import database_fixtures
from helpdesk_gateway.cli import upgrade

# Pages and HTTP plumbing, not storage: SQLite here; the gateway's accounts and tokens meet PostgreSQL in
# test_auth.py, test_cli.py, test_ui_password.py and in the end-to-end postgres run (tests/README.md).
db_url, sessions = database_fixtures("gateway", upgrade, kinds=("sqlite",))

ADMIN = {"Authorization": "Bearer t"}
TICKET = {"subject": "VPN drops", "description": "Every 5 minutes.", "requester": {"email": "eva@example.se"}}


@pytest.fixture
def make_app(db_url, dead_amqp_uri):
    def make(**overrides):
        settings = dict(database_url=db_url, bootstrap_token="t", amqp_uri=dead_amqp_uri, rpc_timeout=0.5,
                        rpc_pool_size=4)
        settings.update(overrides)
        return create_app(Settings(**settings))

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def token_for(sessions):
    def make(role, **options):
        return {"Authorization": f"Bearer {create_token(sessions, f'a-{role}', role, **options)[1]}"}

    return make


def error_of(response, status):
    """The error body of a JSON error answer with ``status``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["message"]
    return body["error"]


def test_an_unknown_path_is_a_json_404_even_without_a_token(client):
    for path in ("/nothing-here", "/api/v1/nothing-here", "/api/v1/tickets/HD-1/nothing"):
        assert error_of(client.get(path), 404)["code"] == "not_found"
    assert error_of(client.get("/api/v1/nothing-here", headers=ADMIN), 404)["code"] == "not_found"


def test_a_method_a_route_does_not_accept_is_a_json_405_listing_the_allowed_ones(client):
    response = client.delete("/api/v1/tickets", headers=ADMIN)
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST", "HEAD", "OPTIONS"}
    assert error_of(client.put("/api/v1/tickets/HD-1"), 405)["code"] == "method_not_allowed"


def test_a_body_above_max_body_bytes_is_a_json_413(make_app):
    client = make_app(max_body_bytes=200).test_client()
    big = {**TICKET, "description": "x" * 300}
    error = error_of(client.post("/api/v1/tickets", json=big, headers=ADMIN), 413)
    assert error["code"] == "payload_too_large" and "200 bytes" in error["message"]
    # just below the limit the body is read and judged on its content instead
    small = {**TICKET, "requester": {"email": "not-an-address"}}
    assert error_of(client.post("/api/v1/tickets", json=small, headers=ADMIN), 422)["code"] == "validation_failed"


def test_a_body_that_is_not_json_is_a_json_415(client):
    response = client.post("/api/v1/tickets", data="subject=x", content_type="text/plain", headers=ADMIN)
    assert error_of(response, 415)["code"] == "unsupported_media_type"
    response = client.patch("/api/v1/tickets/HD-1", data=b"{}", headers=ADMIN)  # no Content-Type at all
    assert error_of(response, 415)["code"] == "unsupported_media_type"


@pytest.mark.parametrize("body", ['{"subject": "x",', "{'subject': 'x'}", "", "nul"])
def test_malformed_json_is_a_400_invalid_json(client, body):
    response = client.post("/api/v1/tickets", data=body, content_type="application/json", headers=ADMIN)
    assert error_of(response, 400)["code"] == "invalid_json"


def test_json_that_is_not_an_object_is_a_422_invalid_body(client):
    response = client.post("/api/v1/tickets", data="[1, 2]", content_type="application/json", headers=ADMIN)
    error = error_of(response, 422)
    assert error["code"] == "invalid_body" and error["details"][0]["code"] == "wrong_type"


def test_an_unknown_query_parameter_is_a_422_naming_it(client):
    error = error_of(client.get("/api/v1/tickets?colour=red&limit=5", headers=ADMIN), 422)
    assert error["code"] == "validation_failed"
    assert error["details"] == [{"field": "colour", "code": "unknown_field",
                                 "message": "this field is not known here; check its spelling"}]
    error = error_of(client.get("/api/v1/tickets?limit=500", headers=ADMIN), 422)
    assert [(d["field"], d["code"]) for d in error["details"]] == [("limit", "out_of_range")]


def test_the_token_is_checked_before_anything_else(client):
    response = client.post("/api/v1/tickets", data="{", content_type="application/json")
    assert error_of(response, 401)["code"] == "missing_token"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    response = client.get("/api/v1/tickets?colour=red", headers={"Authorization": "Bearer nope"})
    assert error_of(response, 401)["code"] == "invalid_token"


@pytest.mark.parametrize("role, method, path", [
    ("agent", "POST", "/api/v1/custom-fields"),
    ("customer", "PATCH", "/api/v1/tickets/HD-1"),
    ("customer", "GET", "/api/v1/tickets/HD-1/history"),
    ("customer", "POST", "/api/v1/custom-fields"),
])
def test_a_role_not_allowed_is_a_403_before_the_body_is_read(client, token_for, role, method, path):
    headers = token_for(role, email="eva@example.se")
    response = client.open(path, method=method, data="{", content_type="application/json", headers=headers)
    error = error_of(response, 403)
    assert error["code"] == "role_not_allowed" and "admin" in error["message"]


def test_an_allowed_role_passes_the_role_check(client, token_for):
    response = client.post("/api/v1/custom-fields", json={"name": "Bad Name"}, headers=ADMIN)
    assert error_of(response, 422)["code"] == "validation_failed"
    response = client.patch("/api/v1/tickets/HD-1", json={"tier": 0}, headers=token_for("agent"))
    assert error_of(response, 422)["code"] == "validation_failed"


def test_an_unreachable_broker_is_a_json_503(client):
    error = error_of(client.get("/api/v1/tickets/HD-1", headers=ADMIN), 503)
    assert error["code"] == "broker_unavailable"


def test_health_tells_the_public_only_ok_or_degraded_and_admins_the_details(client, token_for):
    response = client.get("/health")
    assert response.status_code == 503
    assert response.get_json() == {"status": "degraded"}  # no service names, no exception text
    assert error_of(client.get("/health?details=1"), 401)["code"] == "missing_token"
    assert error_of(client.get("/health?details=1", headers=token_for("agent")), 403)["code"] == "role_not_allowed"
    assert error_of(client.get("/health?verbose=1"), 422)["code"] == "validation_failed"
    response = client.get("/health?details=1", headers=ADMIN)
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded" and body["checked_at"]
    checks = body["checks"]
    assert checks["database"]["ok"] is True
    assert checks["broker"]["ok"] is False and checks["tickets"]["ok"] is False
    assert checks["tickets"]["error"].startswith("ServiceUnavailable: The message broker cannot be reached")


def test_health_checks_run_at_most_once_per_cache_period(make_app, monkeypatch):
    from helpdesk_gateway import observability

    runs = []
    monkeypatch.setattr(observability, "_check_everything", lambda: runs.append(1) or (True, {"broker": {"ok": True}}))
    client = make_app(health_cache_seconds=60).test_client()
    for _ in range(20):
        response = client.get("/health")
        assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert client.get("/health?details=1", headers=ADMIN).get_json()["checks"] == {"broker": {"ok": True}}
    assert len(runs) == 1
    monkeypatch.setattr(observability.time, "monotonic", lambda: 10**9)  # the cache period has passed
    client.get("/health")
    assert len(runs) == 2


def test_an_unexpected_exception_is_a_json_500_quoting_the_request_id_never_html(app):
    def boom():
        raise RuntimeError("database password is hunter2")

    def missing():
        raise NotFound("No such thing.", code="thing_not_found", details=[{"field": "id"}])

    app.add_url_rule("/api/test-boom", "test_boom", boom)
    app.add_url_rule("/test-missing", "test_missing", missing)
    client = app.test_client()
    response = client.get("/api/test-boom", headers={**ADMIN, "X-Request-ID": "req-42"})
    error = error_of(response, 500)
    assert error["code"] == "internal_error" and "req-42" in error["message"]
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "<html" not in text.lower() and "Traceback" not in text
    assert response.headers["X-Request-ID"] == "req-42"
    assert response.headers["X-Content-Type-Options"] == "nosniff" and response.headers["Cache-Control"] == "no-store"
    generated = client.get("/api/test-boom", headers=ADMIN)
    assert generated.headers["X-Request-ID"] in error_of(generated, 500)["message"]
    error = error_of(client.get("/test-missing", headers=ADMIN), 404)
    assert error == {"code": "thing_not_found", "message": "No such thing.", "details": [{"field": "id"}]}


def test_the_gateways_database_unreachable_is_a_json_503_to_retry_and_other_database_errors_stay_500(app):
    """What the soak (tests/soak.py) met while PostgreSQL restarted: a 500 for every request, where a client
    should have been told to retry."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    import psycopg2

    def unreachable():
        raise OperationalError("SELECT 1", {}, psycopg2.OperationalError("the database system is shutting down"))

    def duplicate():
        raise IntegrityError("INSERT", {}, psycopg2.IntegrityError("duplicate key"))

    app.add_url_rule("/api/test-unreachable", "test_unreachable", unreachable)
    app.add_url_rule("/api/test-duplicate", "test_duplicate", duplicate)
    client = app.test_client()
    response = client.get("/api/test-unreachable", headers=ADMIN)
    assert error_of(response, 503)["code"] == "database_unavailable" and response.headers["Retry-After"] == "1"
    assert "shutting down" not in response.get_data(as_text=True)
    assert error_of(client.get("/api/test-duplicate", headers=ADMIN), 500)["code"] == "internal_error"


def test_the_request_id_is_echoed_or_made_up(client):
    for path, headers, status in [("/metrics", {}, 200), ("/nothing", {}, 404), ("/api/v1/tickets", {}, 401),
                                  ("/api/v1/tickets?x=1", ADMIN, 422)]:
        response = client.get(path, headers={**headers, "X-Request-ID": "abc-123"})
        assert response.status_code == status
        assert response.headers["X-Request-ID"] == "abc-123"
        made_up = client.get(path, headers=headers).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", made_up)
        assert made_up != client.get(path, headers=headers).headers["X-Request-ID"]


def test_a_client_request_id_is_kept_only_when_it_is_a_sane_token(client):
    for sane in ("abc-123", "a" * 100, "req:2026-12-07T05:00:00.123_x"):
        assert client.get("/metrics", headers={"X-Request-ID": sane}).headers["X-Request-ID"] == sane
    for insane in ("a" * 101, "two words", "<script>alert(1)</script>", "caf\u00e9", "a,b", "%0d%0aSet-Cookie"):
        made_up = client.get("/metrics", headers={"X-Request-ID": insane}).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", made_up), insane


def test_every_answer_carries_the_security_headers(make_app):
    client = make_app(max_body_bytes=200).test_client()
    cases = [
        (client.get("/nothing-here"), 404, "no-store?"),
        (client.get("/api/v1/nothing-here"), 404, "no-store"),
        (client.get("/api/v1/tickets"), 401, "no-store"),
        (client.get("/api/v1/tickets?x=1", headers=ADMIN), 422, "no-store"),
        (client.delete("/api/v1/tickets", headers=ADMIN), 405, "no-store"),
        (client.post("/api/v1/tickets", json={**TICKET, "description": "x" * 300}, headers=ADMIN), 413, "no-store"),
        (client.get("/api/v1/tickets/HD-1", headers=ADMIN), 503, "no-store"),
        (client.get("/health"), 503, "no-store"),
        (client.get("/metrics"), 200, "no-store"),
        (client.get("/api/openapi.json"), 200, "public, max-age=300"),
    ]
    for response, status, cache in cases:
        assert response.status_code == status, (response.request.path, response.status_code)
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.request.path
        if cache == "no-store?":  # outside the API (the UI's pages): their own policy, none forced here
            continue
        assert response.headers["Cache-Control"] == cache, response.request.path


def test_the_openapi_document_describes_exactly_the_apps_routes(client, app):
    response = client.get("/api/openapi.json")  # public: no token
    assert response.status_code == 200
    document = response.get_json()
    routes = {(re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules()
              if rule.endpoint != "static" and rule.endpoint.split(".")[0] not in BLUEPRINTS  # pages: not the API
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert described == routes
    assert len(routes) >= 13
    for path, item in document["paths"].items():
        for method, operation in item.items():
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
            assert names == re.findall(r"{([^}]+)}", path), (method, path)


def test_an_id_beyond_64_bits_is_refused_before_any_service_sees_it(client):
    """The fuzzer's finding (issue 17): ids past 64 bits reached the services and failed there as 500s
    (SQLite: OverflowError). In a body they are 422 out_of_range; in a path they name nothing: 404."""
    huge = 2**64
    for path, body, field in [("/api/v1/contacts/1/merge", {"other": huge}, "other"),
                              ("/api/v1/tickets/HD-1/contact", {"contact_id": huge}, "contact_id"),
                              ("/api/v1/kb/suggestions/opened", {"suggestion_id": "s", "article_id": huge},
                               "article_id"),
                              ("/api/v1/kb/articles", {"title": "T", "body": "B", "language": "en",
                                                       "translation_of": huge}, "translation_of")]:
        method = client.put if path.endswith("/contact") else client.post
        error = error_of(method(path, json=body, headers=ADMIN), 422)
        assert {"field": field, "code": "out_of_range"} in [
            {"field": d["field"], "code": d["code"]} for d in error["details"]], error
    for path in (f"/api/v1/contacts/{huge}", f"/api/v1/kb/articles/{huge}"):
        assert error_of(client.get(path, headers=ADMIN), 404)["code"] == "not_found"
    assert error_of(client.delete(f"/api/v1/kb/articles/{huge}", headers=ADMIN), 404)["code"] == "not_found"
