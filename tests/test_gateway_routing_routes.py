"""The routing routes of the gateway (``helpdesk_gateway.api.routing``) over HTTP against a real routing
service: the Flask app is built as in production, with the routing blueprint registered on it."""
import pytest

from helpdesk_gateway.app import create_app
from helpdesk_gateway.cli import upgrade as gateway_upgrade
from helpdesk_gateway.openapi import document
from helpdesk_gateway.settings import Settings
from helpdesk_common.adapters.database import engine_for
from helpdesk_routing.migrate import upgrade as upgrade_routing
from helpdesk_routing.service import RoutingService

TOKEN = "hd_test_routing_admin"


@pytest.fixture
def db_url(tmp_path):
    """Routing's database."""
    url = f"sqlite:///{tmp_path / 'routing.db'}"
    upgrade_routing(url)
    yield url
    engine_for(url).dispose()


@pytest.fixture
def client(container_factory, rabbit_config, db_url, tmp_path):
    container = container_factory(RoutingService, {**rabbit_config, "ROUTING_DB_URL": db_url, "serializer": "json"})
    container.start()
    gateway_db = f"sqlite:///{tmp_path / 'gateway.db'}"
    gateway_upgrade(gateway_db)
    app = create_app(Settings(amqp_uri=rabbit_config["AMQP_URI"], database_url=gateway_db, bootstrap_token=TOKEN))
    assert "routing" in app.blueprints
    with app.test_client() as client:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
        yield client


def test_agents_teams_rules_presence_over_http(client):
    assert client.post("/api/v1/teams", json={"name": "network", "tier": 1}).status_code == 201
    created = client.post("/api/v1/agents", json={"name": "Eva", "email": "eva@example.se", "languages": ["sv"],
                                                  "skills": {"vpn": 4}, "teams": ["network"], "capacity": 3})
    assert created.status_code == 201, created.get_json()
    agent = created.get_json()
    assert created.headers["Location"].endswith(f"/api/v1/agents/{agent['id']}")
    assert (agent["presence"], agent["load"], agent["assignee"]) == ("offline", 0, f"agent-{agent['id']}")
    patched = client.patch(f"/api/v1/agents/{agent['id']}", json={"capacity": 5, "tier": 2})
    assert (patched.status_code, patched.get_json()["capacity"], patched.get_json()["tier"]) == (200, 5, 2)
    online = client.put(f"/api/v1/agents/{agent['id']}/presence", json={"presence": "online"})
    assert online.get_json()["presence"] == "online"
    assert client.get(f"/api/v1/agents/{agent['id']}").get_json()["presence"] == "online"
    rule = client.post("/api/v1/routing/rules", json={"name": "vpn", "conditions": {"words": ["vpn"]},
                                                      "actions": {"team": "network", "required_skills": {"vpn": 3}}})
    assert rule.status_code == 201 and rule.get_json()["position"] == 1
    assert [r["name"] for r in client.get("/api/v1/routing/rules").get_json()] == ["vpn"]
    second = client.post("/api/v1/routing/rules", json={"name": "mail", "actions": {"tier": 2}}).get_json()
    moved = client.patch(f"/api/v1/routing/rules/{second['id']}", json={"position": 1, "enabled": False,
                                                                         "conditions": {"channels": ["email"]}})
    assert moved.status_code == 200, moved.get_json()
    assert (moved.get_json()["position"], moved.get_json()["enabled"]) == (1, False)
    assert [(r["name"], r["position"]) for r in client.get("/api/v1/routing/rules").get_json()] == [
        ("mail", 1), ("vpn", 2)]
    refused = client.patch(f"/api/v1/routing/rules/{second['id']}", json={"actions": {}})
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (422, "validation_failed")
    missing = client.patch("/api/v1/routing/rules/999999", json={"enabled": True})
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "rule_not_found")
    assert client.get("/api/v1/teams").get_json()[0]["queued"] == 0
    assert client.get("/api/v1/routing/queue?team=network").get_json() == []


def test_errors_are_json_with_stable_codes(client):
    bad = client.post("/api/v1/agents", json={"name": "X", "email": "nope", "presence": "busy"})
    assert bad.status_code == 422
    assert {d["field"] for d in bad.get_json()["error"]["details"]} == {"email", "presence"}
    missing = client.get("/api/v1/agents/999")
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "agent_not_found")
    assert client.get("/api/v1/agents/abc").status_code == 404
    assert client.post("/api/v1/teams", json={"name": "a"}).status_code == 201
    assert client.post("/api/v1/teams", json={"name": "a"}).get_json()["error"]["code"] == "team_exists"
    unknown = client.put("/api/v1/tickets/HD-1/assignment", json={"agent_id": 1, "reason": "x"})
    assert unknown.status_code == 404


def test_openapi_document_describes_the_routing_routes(client):
    from openapi_spec_validator import validate as validate_spec

    doc = document()
    validate_spec(doc)
    paths = doc["paths"]
    assert {"post", "get"} <= set(paths["/api/v1/agents"])
    assert {"get", "patch"} <= set(paths["/api/v1/agents/{agent_id}"])
    assert "put" in paths["/api/v1/agents/{agent_id}/presence"]
    assert "post" in paths["/api/v1/teams"] and "post" in paths["/api/v1/routing/rules"]
    assert "put" in paths["/api/v1/tickets/{number}/assignment"]
