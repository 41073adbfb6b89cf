"""Admin pages through Flask's test client: each change reaches the service exactly as the REST route
sends it (parity), with the person's viewer; supervisors read, agents are kept out; bad input answers the
form again, with what was typed, and changes nothing."""
import re

import pytest

from helpdesk_common.errors import ValidationFailed
from helpdesk_gateway import accounts
from helpdesk_gateway.app import create_app
from helpdesk_gateway.settings import Settings
from helpdesk_gateway.ui import forms
from helpdesk_common.testing import database_fixtures
from helpdesk_gateway.cli import upgrade

# Pages and HTTP plumbing, not storage: SQLite here; the gateway's accounts and tokens meet PostgreSQL in
# test_auth.py, test_cli.py, test_ui_password.py and in the end-to-end postgres run (tests/README.md).
db_url, sessions = database_fixtures("gateway", upgrade, kinds=("sqlite",))

PASSWORD = "correct horse battery"


class Routing:
    def __init__(self):
        self.calls = []
        self.agents = [{"id": 7, "name": "Ada", "email": "ada@example.org", "teams": ["network"], "languages": ["en"],
                        "skills": {"vpn": 4}, "tier": 1, "capacity": 10, "load": 2, "presence": "online",
                        "working_hours": None, "assignee": "agent-7"}]
        self.rules = []

    def call(self, service, method, *args):
        self.calls.append((method, args))
        if method == "list_agents":
            return self.agents
        if method == "list_teams":
            return [{"name": "network", "tier": 1, "strategy": "round_robin", "queued": 0},
                    {"name": "billing", "tier": 1, "strategy": "least_loaded", "queued": 3}]
        if method == "list_rules":
            return sorted(self.rules, key=lambda rule: rule["position"])  # in order, as routing answers
        if method == "list_custom_fields":
            return []
        if method in ("create_agent", "update_agent"):
            body = args[-2]
            if "@" not in body.get("email", "@"):
                raise ValidationFailed("The request is not valid", details=[
                    {"field": "email", "code": "invalid_value", "message": "not an email address"}])
            agent = {**self.agents[0], **body, "id": 8 if method == "create_agent" else args[0], "load": 0,
                     "assignee": "agent-8"}
            return agent
        if method == "add_rule":
            rule = {"id": 1, "position": 1, "enabled": True, **args[0]}
            self.rules.append(rule)
            return rule
        if method == "update_rule":
            rule = next(r for r in self.rules if r["id"] == args[0])
            if "position" in args[1]:  # as routing moves it: the others shift by one
                others = [r for r in sorted(self.rules, key=lambda r: r["position"]) if r is not rule]
                others.insert(min(args[1]["position"], len(self.rules)) - 1, rule)
                for position, each in enumerate(others, 1):
                    each["position"] = position
            rule.update({k: v for k, v in args[1].items() if k != "position"})
            return rule
        if method == "update_team":
            return {"name": args[0], "tier": 1, "strategy": "round_robin", "queued": 0, **args[1]}
        if method in ("create_team", "define_custom_field", "delete_rule"):
            return {"name": "x", "label": "x", **(args[0] if isinstance(args[0], dict) else {})}
        if method == "send_account_mail":
            return {"id": 1}
        raise AssertionError(f"unexpected call {service}.{method}")

    def made(self, method):
        return [args for name, args in self.calls if name == method]


@pytest.fixture
def routing():
    return Routing()


@pytest.fixture
def client(db_url, dead_amqp_uri, routing, sessions):
    app = create_app(Settings(database_url=db_url, bootstrap_token="t", amqp_uri=dead_amqp_uri, rpc_timeout=0.5))
    app.extensions["helpdesk.rpc"] = routing
    accounts.create_account(sessions, "root@example.org", "admin", PASSWORD, name="Alex")
    accounts.create_account(sessions, "sup@example.org", "supervisor", PASSWORD)
    accounts.create_account(sessions, "ada@example.org", "agent", PASSWORD, agent_id=7)
    return app.test_client()


def csrf(client, path):
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get(path).get_data(as_text=True)).group(1)


def sign_in(client, email):
    client.post("/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": csrf(client, "/sign-in")})


def post(client, path, form_page=None, **data):
    return client.post(path, data={**data, "csrf_token": csrf(client, form_page or path)})


def test_a_new_agent_reaches_routing_as_the_rest_route_sends_it_and_is_invited(client, routing, sessions):
    sign_in(client, "root@example.org")
    answer = post(client, "/workspace/admin/agents", name="Bo Berg", email="bo@example.org", languages="sv, EN",
                  skills="billing:3, invoices", teams=["billing", "nonexistent"], tier="2", capacity="5",
                  presence="online", hours_timezone="Europe/Stockholm", hours_mon="08:00-12:00, 13:00-17:00",
                  invite="on")
    assert answer.status_code == 302
    ((body, viewer),) = routing.made("create_agent")
    assert body == {"name": "Bo Berg", "email": "bo@example.org", "languages": ["sv", "en"],
                    "skills": {"billing": 3, "invoices": 1}, "teams": ["billing"], "tier": 2, "capacity": 5,
                    "working_hours": {"timezone": "Europe/Stockholm", "weekly": {"mon": ["08:00-12:00", "13:00-17:00"]}},
                    "presence": "online"}
    assert viewer["role"] == "admin" and viewer["actor"] == "account-1"
    invited = accounts.find_account(sessions, email="bo@example.org")
    assert invited.role == "agent" and invited.agent_id == 8  # one person, one identity, linked at once
    ((mail,),) = routing.made("send_account_mail")
    assert mail["to"] == "bo@example.org" and "/password/set/" in mail["body"]


def test_a_refused_agent_shows_the_form_again_with_what_was_typed(client, routing):
    sign_in(client, "root@example.org")
    answer = post(client, "/workspace/admin/agents", name="<b>Bo</b>", email="not-an-address", skills="vpn:x")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "vpn:x" in page and "name:level" in page
    assert routing.made("create_agent") == []
    answer = post(client, "/workspace/admin/agents", name="<b>Bo</b>", email="not-an-address")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "Not saved: email" in page and "&lt;b&gt;Bo&lt;/b&gt;" in page, re.findall(r"flash-error[^<]*<", page)


def test_changing_an_agent_sends_only_the_changes_route_fields(client, routing):
    sign_in(client, "root@example.org")
    page = client.get("/workspace/admin/agents/7").get_data(as_text=True)
    assert 'value="vpn:4"' in page
    assert post(client, "/workspace/admin/agents/7", name="Ada L", email="ada@example.org", teams=["network"],
                tier="3", capacity="12").status_code == 302
    ((agent_id, body, _viewer),) = routing.made("update_agent")
    assert agent_id == 7 and body["tier"] == 3 and "presence" not in body and body["working_hours"] is None


def test_a_rule_and_a_custom_field_and_a_team_take_the_rest_routes_bodies(client, routing):
    sign_in(client, "root@example.org")
    assert post(client, "/workspace/admin/rules", name="Invoices to billing", if_words="invoice, refund",
                if_languages="sv", then_team="billing", then_priority="high", then_skills="billing:2").status_code == 302
    ((rule,),) = routing.made("add_rule")
    assert rule == {"name": "Invoices to billing", "enabled": True,
                    "conditions": {"words": ["invoice", "refund"], "languages": ["sv"]},
                    "actions": {"required_skills": {"billing": 2}, "team": "billing", "priority": "high"}}
    assert "Invoices to billing" in client.get("/workspace/admin/rules").get_data(as_text=True)
    assert post(client, "/workspace/admin/rules/1/delete", form_page="/workspace/admin/rules").status_code == 302
    assert routing.made("delete_rule") == [(1,)]
    assert post(client, "/workspace/admin/fields", name="contract", label="Contract", type="enum",
                options="gold, silver", required="on").status_code == 302
    assert routing.made("define_custom_field") == [({"name": "contract", "label": "Contract", "type": "enum",
                                                     "required": True, "options": ["gold", "silver"]},)]
    assert post(client, "/workspace/admin/teams", name="vip", tier="2", strategy="round_robin",
                escalates_to="billing").status_code == 302
    assert routing.made("create_team") == [({"name": "vip", "tier": 2, "strategy": "round_robin",
                                             "escalates_to": "billing"},)]


RULES = [{"id": 4, "position": 1, "name": "VIP first", "enabled": True, "conditions": {"requester_domains": ["vip.se"]},
          "actions": {"priority": "high"}},
         {"id": 5, "position": 2, "name": "Invoices", "enabled": True,
          "conditions": {"words": ["invoice"], "mailboxes": ["billing@example.org"]},
          "actions": {"team": "billing", "required_skills": {"billing": 2}}}]


def test_a_rule_is_changed_in_place_as_the_patch_route_does_keeping_what_the_form_does_not_show(client, routing):
    routing.rules = [dict(rule) for rule in RULES]
    sign_in(client, "root@example.org")
    page = client.get("/workspace/admin/rules/5").get_data(as_text=True)
    assert 'value="invoice"' in page and 'value="billing:2"' in page and 'id="rule-kept"' in page  # mailboxes
    answer = post(client, "/workspace/admin/rules/5", name="Invoices and refunds", position="2", enabled="off",
                  if_words="invoice, refund", then_team="billing", then_skills="billing:3")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/workspace/admin/rules#rule-5")
    ((rule_id, body),) = routing.made("update_rule")
    assert rule_id == 5 and body == {
        "name": "Invoices and refunds", "position": 2, "enabled": False,
        "conditions": {"mailboxes": ["billing@example.org"], "words": ["invoice", "refund"]},
        "actions": {"required_skills": {"billing": 3}, "team": "billing"}}
    refused = post(client, "/workspace/admin/rules/5", name="Invoices", then_tier="many")
    assert refused.status_code == 422 and 'value="Invoices"' in refused.get_data(as_text=True)
    assert len(routing.made("update_rule")) == 1
    assert client.get("/workspace/admin/rules/99").status_code == 404


def test_rules_move_up_and_down_one_place_by_buttons(client, routing):
    routing.rules = [dict(rule) for rule in RULES]
    sign_in(client, "root@example.org")
    page = client.get("/workspace/admin/rules").get_data(as_text=True)
    # the first rule cannot go up, the last cannot go down; each button says which rule it moves
    assert 'id="move-up-4"' not in page and 'id="move-down-5"' not in page
    assert 'aria-label="Move the rule Invoices up"' in page and 'id="move-down-4"' in page
    answer = post(client, "/workspace/admin/rules/5/move", form_page="/workspace/admin/rules", direction="up")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("#rule-5")
    assert routing.made("update_rule") == [(5, {"position": 1})]
    page = client.get("/workspace/admin/rules").get_data(as_text=True)
    assert "Rule Invoices is now number 1." in page
    assert page.index('id="rule-5"') < page.index('id="rule-4"')
    assert post(client, "/workspace/admin/rules/5/move", form_page="/workspace/admin/rules",
                direction="sideways").status_code == 400
    entries = [e for e in audit_log(client) if e["details"].get("via") == "workspace"]
    assert (entries[0]["action"], entries[0]["target"], entries[0]["details"]["body"]) == (
        "PATCH /api/v1/routing/rules/<int:rule_id>", "/api/v1/routing/rules/5", {"position": 1})


@pytest.mark.parametrize("path", ["agents", "agents/7", "teams", "rules", "rules/4", "fields", "people"])
def test_supervisors_read_every_admin_page_and_change_nothing(client, routing, path):
    routing.rules = [dict(rule) for rule in RULES]
    sign_in(client, "sup@example.org")
    page = client.get(f"/workspace/admin/{path}")
    assert page.status_code == 200 and "<button type=\"submit\">" not in page.get_data(as_text=True).split("<main")[1]
    assert post(client, f"/workspace/admin/{path}", name="x").status_code == 403
    assert [m for m, _ in routing.calls if not m.startswith(("list_", "get_"))] == []


def test_agents_are_kept_out_of_the_admin_pages(client):
    sign_in(client, "ada@example.org")
    assert client.get("/workspace/admin/agents").status_code == 403
    assert "Administration" not in client.get("/workspace/preferences").get_data(as_text=True)


def test_form_lists_and_skills_are_read_as_people_type_them():
    assert forms.words(" en,, nl \n sv ") == ["en", "nl", "sv"]
    assert forms.skills("VPN:4, billing") == {"vpn": 4, "billing": 1}
    with pytest.raises(forms.FormError):
        forms.skills("vpn:four")
    assert forms.working_hours({"hours_tue": "09:00-17:00"}) == {"timezone": "UTC", "weekly": {"tue": ["09:00-17:00"]}}
    assert forms.working_hours({}) is None


def audit_log(client):
    """The audit log as admins read it over the API (the bootstrap token "t")."""
    answer = client.get("/api/v1/audit", headers={"Authorization": "Bearer t"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def test_admin_pages_write_the_audit_log_as_the_rest_routes_do(client, routing):
    sign_in(client, "root@example.org")
    client.post("/workspace/admin/teams", data={"name": "field", "tier": "2", "strategy": "round_robin",
                                                "csrf_token": csrf(client, "/workspace/admin/teams")})
    client.post("/workspace/admin/rules/1/delete", data={"csrf_token": csrf(client, "/workspace/admin/rules")})
    client.post("/workspace/admin/teams", data={"name": "", "tier": "x",  # refused: nothing recorded
                                                "csrf_token": csrf(client, "/workspace/admin/teams")})
    (deleted, created) = [entry for entry in audit_log(client) if entry["details"].get("via") == "workspace"]
    admin = accounts.find_account(client.application.extensions["helpdesk.db"], email="root@example.org")
    assert (created["action"], created["target"], created["actor"]) == ("POST /api/v1/teams", "/api/v1/teams",
                                                                       f"account-{admin.id}")
    assert created["details"]["body"]["name"] == "field"
    assert (deleted["action"], deleted["target"]) == ("DELETE /api/v1/routing/rules/<int:rule_id>",
                                                      "/api/v1/routing/rules/1")
    # the API writes the same action for the same change
    answer = client.post("/api/v1/teams", json={"name": "desk", "tier": 1}, headers={"Authorization": "Bearer t"})
    assert answer.status_code == 201
    assert audit_log(client)[0]["action"] == created["action"]


def test_the_tokens_page_shows_a_new_token_once_lists_and_revokes_it(client):
    sign_in(client, "root@example.org")
    answer = client.post("/workspace/admin/tokens", data={
        "name": "crm <b>", "role": "agent", "email": "crm@example.org", "teams": "network, billing",
        "scopes": ["read"], "expires_in_days": "30", "csrf_token": csrf(client, "/workspace/admin/tokens")})
    assert answer.status_code == 201
    page = answer.get_data(as_text=True)
    secret = re.search(r'id="new-token-secret" readonly value="([^"]+)"', page).group(1)
    assert "crm &lt;b&gt;" in page  # typed HTML shown as text
    assert client.get("/api/v1/tickets/counts", headers={"Authorization": f"Bearer {secret}"}).status_code != 401
    listed = client.get("/workspace/admin/tokens").get_data(as_text=True)
    assert secret not in listed and "network, billing" in listed  # shown once only
    token_id = re.search(r'action="/workspace/admin/tokens/(\d+)/revoke"', listed).group(1)
    revoked = client.post(f"/workspace/admin/tokens/{token_id}/revoke",
                          data={"csrf_token": csrf(client, "/workspace/admin/tokens")})
    assert revoked.status_code == 302
    assert client.get("/api/v1/tickets/counts", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    actions = [(e["action"], e["target"]) for e in audit_log(client) if e["details"].get("via") == "workspace"]
    assert actions == [("DELETE /api/v1/tokens/<int:token_id>", f"/api/v1/tokens/{token_id}"),
                       ("POST /api/v1/tokens", "/api/v1/tokens")]
    assert secret not in str(audit_log(client))


def test_the_tokens_page_refuses_a_bad_token_with_the_reason_and_is_for_admins(client):
    sign_in(client, "root@example.org")
    answer = client.post("/workspace/admin/tokens", data={
        "name": "x", "role": "customer", "scopes": ["admin"], "expires_in_days": "30",
        "csrf_token": csrf(client, "/workspace/admin/tokens")})
    assert answer.status_code == 422 and "Not saved" in answer.get_data(as_text=True)
    client.post("/sign-out", data={"csrf_token": csrf(client, "/workspace/admin/tokens")})
    sign_in(client, "sup@example.org")
    assert client.get("/workspace/admin/tokens").status_code == 200  # supervisors read
    assert client.post("/workspace/admin/tokens", data={
        "name": "y", "role": "admin", "csrf_token": csrf(client, "/workspace/admin/tokens")}).status_code == 403
    client.post("/sign-out", data={"csrf_token": csrf(client, "/workspace/admin/tokens")})
    sign_in(client, "ada@example.org")
    assert client.get("/workspace/admin/tokens").status_code == 403


def test_an_admin_changes_a_team_in_place_as_the_patch_route_does(client, routing):
    sign_in(client, "root@example.org")
    page = client.get("/workspace/admin/teams").get_data(as_text=True)
    assert 'href="/workspace/admin/teams/network"' in page
    form = client.get("/workspace/admin/teams/network").get_data(as_text=True)
    assert 'id="team-tier"' in form and 'value="billing"' in form and 'value="network"' not in form.split("team-escalates")[1]
    answer = client.post("/workspace/admin/teams/network", data={
        "tier": "2", "strategy": "least_loaded", "escalates_to": "billing", "description": "Wires <b>",
        "csrf_token": csrf(client, "/workspace/admin/teams/network")})
    assert answer.status_code == 302
    assert routing.made("update_team")[-1][:2] == ("network", {"tier": 2, "strategy": "least_loaded",
                                                             "description": "Wires <b>", "escalates_to": "billing"})
    entry = audit_log(client)[0]
    assert (entry["action"], entry["target"], entry["details"]["via"]) == (
        "PATCH /api/v1/teams/<name>", "/api/v1/teams/network", "workspace")
    bad = client.post("/workspace/admin/teams/network", data={"tier": "two", "csrf_token": csrf(client, "/workspace/admin/teams/network")})
    assert bad.status_code == 422 and "Not saved" in bad.get_data(as_text=True)
    assert client.get("/workspace/admin/teams/nowhere").status_code == 404
    client.post("/sign-out", data={"csrf_token": csrf(client, "/workspace/admin/teams")})
    sign_in(client, "sup@example.org")
    assert client.post("/workspace/admin/teams/network", data={
        "tier": "3", "csrf_token": csrf(client, "/workspace/admin/teams/network")}).status_code == 403
