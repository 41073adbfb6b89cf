"""The tickets API end to end: every process running, driven over HTTP, on SQLite and PostgreSQL."""
import json
import threading
import uuid

import pytest
import requests
from openapi_spec_validator import validate as validate_openapi

from stack import create_token, new_ticket

pytestmark = pytest.mark.e2e

TRANSITIONS = {  # the built-in workflow (services/tickets/helpdesk_tickets/workflow.yaml)
    "new": {"open", "in_progress", "pending", "resolved", "closed"},
    "open": {"in_progress", "pending", "resolved", "closed"},
    "in_progress": {"open", "pending", "resolved", "closed"},
    "pending": {"open", "in_progress", "resolved", "closed"},
    "resolved": {"open", "closed"},
    "closed": set(),
}
PATH_TO = {"new": [], "open": ["open"], "in_progress": ["in_progress"], "pending": ["pending"],
           "resolved": ["resolved"], "closed": ["closed"]}


def error_of(response, status):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()["error"]


def test_a_ticket_is_worked_from_creation_to_closure(platform, api, events):
    created = api.post(f"{platform.url}/api/v1/tickets", json=new_ticket(
        subject="Factuur klopt niet", tags=["billing"], priority="high",
        requester={"email": "Sven.Åberg@example.se", "name": "Sven Åberg"}))
    assert created.status_code == 201, created.text
    ticket = created.json()
    number = ticket["number"]
    assert number.startswith("HD-") and ticket["status"] == "new" and ticket["priority"] == "high"
    assert ticket["requester"]["name"] == "Sven Åberg"
    assert created.headers["Location"].endswith(f"/api/v1/tickets/{number}")

    assert api.get(f"{platform.url}/api/v1/tickets/{number}").json()["subject"] == "Factuur klopt niet"
    changed = api.patch(f"{platform.url}/api/v1/tickets/{number}",
                        json={"status": "in_progress", "assignee": "agent-7", "team": "billing", "tags": ["vip"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["assignee"] == "agent-7" and changed.json()["tags"] == ["vip"]

    note = api.post(f"{platform.url}/api/v1/tickets/{number}/messages",
                    json={"body": "Customer is on the old plan.", "visibility": "internal"})
    reply = api.post(f"{platform.url}/api/v1/tickets/{number}/messages",
                     json={"body": "We corrected the invoice.", "visibility": "public"})
    assert note.status_code == 201 and reply.status_code == 201
    for target in ("resolved", "open", "resolved", "closed"):  # reopened once, then closed
        assert api.patch(f"{platform.url}/api/v1/tickets/{number}", json={"status": target}).status_code == 200

    final = api.get(f"{platform.url}/api/v1/tickets/{number}").json()
    assert final["status"] == "closed" and final["closed_at"] and final["first_response_at"]
    history = api.get(f"{platform.url}/api/v1/tickets/{number}/history").json()
    fields = [entry["field"] for entry in history]
    assert fields[0] == "created"
    assert {"status", "assignee", "team", "tags", "message.internal", "message.public"} <= set(fields)
    status_changes = [(e["old"], e["new"]) for e in history if e["field"] == "status"]
    assert status_changes == [("new", "in_progress"), ("in_progress", "resolved"), ("resolved", "open"),
                              ("open", "resolved"), ("resolved", "closed")]
    # routing (running beside) may record its decision too; every other change is the admin's
    assert all(entry["actor"] in ("bootstrap", "routing") and entry["at"] for entry in history)
    assert {e["field"] for e in history if e["actor"] == "bootstrap"} >= {"status", "assignee", "team", "tags"}

    events.wait("status_changed", number, count=5)
    created_event = events.wait("ticket_created", number)[0]
    assert created_event["source"] == "tickets" and created_event["specversion"] == "1.0"
    assert created_event["data"]["ticket"]["number"] == number
    assert created_event["correlation_id"] == created.headers["X-Request-ID"]
    kinds = {e["data"]["message"]["visibility"] for e in events.wait("message_added", number, count=2)}
    assert kinds == {"public", "internal"}


def test_a_repeated_post_with_the_same_idempotency_key_returns_the_first_ticket(platform, api):
    body = new_ticket()
    headers = {"Idempotency-Key": "order-4711"}
    first = api.post(f"{platform.url}/api/v1/tickets", json=body, headers=headers)
    again = api.post(f"{platform.url}/api/v1/tickets", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["number"] == first.json()["number"]
    assert again.headers["Idempotent-Replayed"] == "true"
    listed = api.get(f"{platform.url}/api/v1/tickets", params={"requester": body["requester"]["email"]}).json()
    assert [t["number"] for t in listed["items"]] == [first.json()["number"]]

    other = api.post(f"{platform.url}/api/v1/tickets", json=new_ticket(subject="Something else"), headers=headers)
    assert error_of(other, 422)["code"] == "idempotency_key_reused"


def at_once(count, call):
    """Run ``call(i)`` in ``count`` threads released together; their answers, in thread order."""
    barrier, answers = threading.Barrier(count), [None] * count

    def run(index):
        barrier.wait(30)
        answers[index] = call(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(answer is not None for answer in answers), "a request never came back"
    return answers


def test_posts_with_one_idempotency_key_at_once_make_one_ticket(platform, api):
    body = new_ticket(subject="Eight clicks on Send", requester={"email": f"race-{uuid.uuid4().hex[:8]}@example.com"})
    key = f"race-{uuid.uuid4()}"
    answers = at_once(8, lambda _: platform.session().post(f"{platform.url}/api/v1/tickets", json=body,
                                                            headers={"Idempotency-Key": key}))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201], [a.text for a in answers]
    assert len({a.json()["number"] for a in answers}) == 1
    listed = api.get(f"{platform.url}/api/v1/tickets", params={"requester": body["requester"]["email"]}).json()
    assert [t["number"] for t in listed["items"]] == [answers[0].json()["number"]]


def test_changes_of_one_ticket_at_once_are_each_applied_or_refused_never_lost(platform, api):
    """Eight agents change eight different custom fields of one ticket at the same moment. Each change is
    applied (200) or refused as concurrent (409, changing nothing): the ticket ends with exactly the
    applied ones, its version counts them, and its history lists them."""
    url, prefix = f"{platform.url}/api/v1", f"race_{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}_{i}" for i in range(8)]
    for name in names:
        assert api.post(f"{url}/custom-fields", json={"name": name, "label": name, "type": "string"}).status_code == 201
    number = api.post(f"{url}/tickets", json=new_ticket()).json()["number"]
    answers = at_once(8, lambda i: platform.session().patch(f"{url}/tickets/{number}",
                                                            json={"custom_fields": {names[i]: f"value {i}"}}))
    assert {a.status_code for a in answers} <= {200, 409}, [a.text for a in answers]
    for refused in (a for a in answers if a.status_code == 409):
        assert error_of(refused, 409)["code"] == "concurrent_change"
    applied = {names[i]: f"value {i}" for i, a in enumerate(answers) if a.status_code == 200}
    assert applied, "no change went through"
    ticket = api.get(f"{url}/tickets/{number}").json()
    assert ticket["custom_fields"] == applied
    assert ticket["version"] == 1 + len(applied)
    changes = [e for e in api.get(f"{url}/tickets/{number}/history").json() if e["field"] == "custom_fields"]
    assert len(changes) == len(applied)  # each applied change recorded once, no refused one
    assert all(len(set(e["new"] or {}) - set(e["old"] or {})) == 1 for e in changes)  # one field added each
    assert changes[-1]["new"] == applied


def without_running_clocks(ticket):
    """The stored ticket, without the SLA time left: that is computed at each read and runs in business hours."""
    sla = {k: v for k, v in ticket["sla"].items() if not k.endswith("_remaining_seconds")}
    return {**ticket, "sla": sla}


@pytest.mark.parametrize("source", list(TRANSITIONS))
def test_every_transition_the_workflow_forbids_is_refused_and_changes_nothing(platform, api, source):
    forbidden = set(TRANSITIONS) - TRANSITIONS[source] - {source}
    number = api.post(f"{platform.url}/api/v1/tickets", json=new_ticket()).json()["number"]
    for step in PATH_TO[source]:
        assert api.patch(f"{platform.url}/api/v1/tickets/{number}", json={"status": step}).status_code == 200
    before = api.get(f"{platform.url}/api/v1/tickets/{number}").json()
    for target in sorted(forbidden):
        error = error_of(api.patch(f"{platform.url}/api/v1/tickets/{number}", json={"status": target}), 409)
        assert error["code"] == "invalid_transition"
        assert source in error["message"] and target in error["message"]
    after = api.get(f"{platform.url}/api/v1/tickets/{number}").json()
    assert without_running_clocks(after) == without_running_clocks(before)
    unknown = error_of(api.patch(f"{platform.url}/api/v1/tickets/{number}", json={"status": "frozen"}), 422)
    assert unknown["details"][0]["field"] == "status"


BAD_INPUT = [
    ("malformed JSON", '{"subject": "x",', 400, "invalid_json", None),
    ("not an object", "[1, 2]", 422, "invalid_body", None),
    ("wrong type", {"subject": 42}, 422, "validation_failed", ("subject", "wrong_type")),
    ("missing field", {"subject": None}, 422, "validation_failed", ("subject", "missing")),
    ("invalid email", {"requester": {"email": "not-an-address"}}, 422, "validation_failed",
     ("requester.email", "invalid_value")),
    ("unknown field", {"sla": "gold"}, 422, "validation_failed", ("sla", "unknown_field")),
    ("unknown priority", {"priority": "asap"}, 422, "validation_failed", ("priority", "invalid_choice")),
    ("empty subject", {"subject": ""}, 422, "validation_failed", ("subject", "too_short")),
    # PostgreSQL stores no NUL (SQLite does): refused at the gateway on both, so both behave alike
    ("NUL in text", {"subject": "a\x00b"}, 422, "invalid_character", ("subject", "invalid_character")),
    ("NUL deep inside", {"requester": {"email": "x@example.com", "name": "A\x00"}}, 422, "invalid_character",
     ("requester.name", "invalid_character")),
]


@pytest.mark.parametrize("case, body, status, code, problem", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_gets_a_json_4xx_and_creates_nothing(platform, api, case, body, status, code, problem):
    marker = f"bad-input-{case.replace(' ', '-')}@example.com"
    if isinstance(body, dict):
        payload = new_ticket(requester={"email": marker})
        for key, value in body.items():
            if value is None:
                payload.pop(key)
            else:
                payload[key] = value
        data = json.dumps(payload)
    else:
        data = body
    response = api.post(f"{platform.url}/api/v1/tickets", data=data, headers={"Content-Type": "application/json"})
    error = error_of(response, status)
    assert error["code"] == code and error["message"]
    if problem:
        assert {"field": problem[0], "code": problem[1]} in [
            {"field": d["field"], "code": d["code"]} for d in error["details"]]
    assert api.get(f"{platform.url}/api/v1/tickets", params={"requester": marker}).json()["items"] == []


def test_other_bad_requests_get_clear_json_errors(platform, api):
    url = f"{platform.url}/api/v1/tickets"
    assert error_of(api.post(url, data="subject=x", headers={"Content-Type": "text/plain"}), 415)["code"] == \
        "unsupported_media_type"
    huge = json.dumps(new_ticket(description="x" * 1_100_000))
    assert error_of(api.post(url, data=huge, headers={"Content-Type": "application/json"}), 413)["code"] == \
        "payload_too_large"
    assert error_of(api.get(f"{url}/HD-999999"), 404)["code"] == "ticket_not_found"
    assert error_of(api.get(url, params={"limit": "many"}), 422)["details"][0]["field"] == "limit"
    assert error_of(api.get(url, params={"colour": "red"}), 422)["details"][0]["code"] == "unknown_field"
    assert error_of(api.delete(url), 405)["code"] == "method_not_allowed"
    assert error_of(api.get(f"{platform.url}/api/v1/nothing-here"), 404)["code"] == "not_found"
    assert error_of(requests.get(url), 401)["code"] == "missing_token"
    assert error_of(requests.get(url, headers={"Authorization": "Bearer nope"}), 401)["code"] == "invalid_token"
    assert error_of(api.patch(f"{url}/HD-999999", json={"status": "open"}), 404)["code"] == "ticket_not_found"
    number = api.post(url, json=new_ticket()).json()["number"]
    assert error_of(api.patch(f"{url}/{number}", json={"priority": None}), 422)["code"] == "validation_failed"
    assert error_of(api.post(f"{url}/{number}/messages", json={"body": "x", "visibility": "secret"}), 422)
    for address in (f"{url}/%00", f"{url}?q=a%00b"):  # PostgreSQL would refuse the query: a 500 once
        assert error_of(api.get(address), 422)["code"] == "invalid_character"


def test_survey_answers_out_of_the_databases_bounds_are_refused(platform, api):
    """Longer than analytics' columns, or a moment before year 1 once in UTC: each failed only on PostgreSQL,
    as a 500 (tests/test_fuzz.py found the first)."""
    url, now = f"{platform.url}/api/v1/surveys/nps", "2026-12-07T10:00:00Z"
    answer = {"survey_id": "bounds-1", "answer_id": "bounds-1a", "score": 7, "submitted_at": now}
    for change, field in [({"survey_id": "s" * 101}, "survey_id"), ({"language": "x" * 11}, "language"),
                          ({"submitted_at": "0001-01-01T00:00:00+14:00"}, "submitted_at"),
                          ({"submitted_at": "2026-12-07T10:00:00"}, "submitted_at")]:
        error = error_of(api.post(url, json={**answer, **change}), 422)
        assert error["details"][0]["field"] == field, error
    assert api.post(url, json=answer).status_code == 202


def test_listing_filters_and_pages_without_gaps_or_repeats(platform, api):
    team = f"team-{platform.kind}-list"
    numbers = [api.post(f"{platform.url}/api/v1/tickets", json=new_ticket(team=team, subject=f"Printer {i} jams",
                                                                          priority="urgent" if i % 2 else "low")
                        ).json()["number"] for i in range(7)]
    seen, cursor = [], None
    while True:
        params = {"team": team, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"{platform.url}/api/v1/tickets", params=params).json()
        seen += [t["number"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(numbers))
    urgent = api.get(f"{platform.url}/api/v1/tickets", params={"team": team, "priority": "urgent"}).json()
    assert len(urgent["items"]) == 3
    text = api.get(f"{platform.url}/api/v1/tickets", params={"team": team, "text": "printer 4"}).json()
    assert [t["number"] for t in text["items"]] == [numbers[4]]


def test_customers_see_only_their_own_tickets_and_never_internal_notes(platform, api):
    email = f"cust-{platform.kind}@example.org"
    customer = platform.session(create_token(platform, "customer", email=email))
    url = f"{platform.url}/api/v1/tickets"
    mine = customer.post(url, json={"subject": "My order is late", "description": "Order 5521 did not arrive."})
    assert mine.status_code == 201, mine.text
    number = mine.json()["number"]
    assert mine.json()["requester"]["email"] == email
    someone_else = api.post(url, json=new_ticket()).json()["number"]
    assert error_of(customer.get(f"{url}/{someone_else}"), 404)["code"] == "ticket_not_found"
    assert error_of(customer.post(url, json=new_ticket()), 403)["code"] == "requester_mismatch"
    assert {t["number"] for t in customer.get(url).json()["items"]} == {number}
    assert "sla" not in customer.get(f"{url}/{number}").json()  # the team's internal targets
    assert "sla" in api.get(f"{url}/{number}").json()

    api.post(f"{url}/{number}/messages", json={"body": "Check the warehouse.", "visibility": "internal"})
    api.post(f"{url}/{number}/messages", json={"body": "It ships today.", "visibility": "public"})
    assert [m["body"] for m in customer.get(f"{url}/{number}/messages").json()] == ["It ships today."]
    assert error_of(customer.patch(f"{url}/{number}", json={"status": "closed"}), 403)["code"] == "role_not_allowed"
    assert error_of(customer.post(f"{url}/{number}/messages", json={"body": "x", "visibility": "internal"}),
                    403)["code"] == "agents_only"
    assert customer.post(f"{url}/{number}/messages", json={"body": "Thanks!"}).status_code == 201


def test_an_agent_limited_to_teams_sees_those_teams_and_untriaged_tickets(platform, api):
    url = f"{platform.url}/api/v1/tickets"
    agent = platform.session(create_token(platform, "agent", email="a@corp.example", teams=["network"]))
    network = api.post(url, json=new_ticket(team="network")).json()["number"]
    billing = api.post(url, json=new_ticket(team="billing")).json()["number"]
    untriaged = api.post(url, json=new_ticket()).json()["number"]
    assert agent.get(f"{url}/{network}").status_code == 200
    assert agent.get(f"{url}/{untriaged}").status_code == 200
    assert error_of(agent.get(f"{url}/{billing}"), 404)["code"] == "ticket_not_found"


def test_custom_fields_are_defined_by_an_admin_and_checked_on_tickets(platform, api):
    name = f"contract_{platform.kind}"
    url = f"{platform.url}/api/v1"
    assert api.post(f"{url}/custom-fields", json={"name": name, "label": "Contract", "type": "enum",
                                                 "options": ["gold", "silver"]}).status_code == 201
    assert error_of(api.post(f"{url}/custom-fields", json={"name": name, "label": "Again", "type": "string"}),
                    409)["code"] == "custom_field_exists"
    ok = api.post(f"{url}/tickets", json=new_ticket(custom_fields={name: "gold"}))
    assert ok.status_code == 201 and ok.json()["custom_fields"] == {name: "gold"}
    wrong = error_of(api.post(f"{url}/tickets", json=new_ticket(custom_fields={name: "bronze"})), 422)
    assert wrong["details"][0]["code"] == "invalid_custom_field"
    unknown = error_of(api.post(f"{url}/tickets", json=new_ticket(custom_fields={"colour": "red"})), 422)
    assert unknown["details"][0]["code"] == "unknown_custom_field"
    agent = platform.session(create_token(platform, "agent"))
    assert error_of(agent.post(f"{url}/custom-fields", json={"name": "x_" + name, "label": "X", "type": "string"}),
                    403)["code"] == "role_not_allowed"


def test_openapi_document_is_valid_and_describes_every_route(platform):
    document = requests.get(f"{platform.url}/api/openapi.json").json()
    validate_openapi(document)
    assert document["openapi"] == "3.1.0"
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    expected = {("/api/v1/tickets", "post"), ("/api/v1/tickets", "get"), ("/api/v1/tickets/{number}", "get"),
                ("/api/v1/tickets/{number}", "patch"), ("/api/v1/tickets/{number}/messages", "post"),
                ("/api/v1/tickets/{number}/messages", "get"), ("/api/v1/tickets/{number}/history", "get"),
                ("/health", "get"), ("/metrics", "get"), ("/api/openapi.json", "get")}
    assert expected <= described


def test_health_and_metrics(platform, api):
    health = requests.get(f"{platform.url}/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}  # the public answer: nothing more
    health = api.get(f"{platform.url}/health", params={"details": 1})  # admins: each check
    assert health.status_code == 200
    checks = health.json()["checks"]
    assert {"broker", "database", "tickets"} <= set(checks) and all(c["ok"] for c in checks.values())
    api.get(f"{platform.url}/api/v1/tickets")
    metrics = requests.get(f"{platform.url}/metrics").text
    assert 'helpdesk_http_requests_total{method="GET",route="/api/v1/tickets",status="200"}' in metrics
