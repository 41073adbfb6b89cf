"""The authorization matrix, generated from the OpenAPI document (issue 17): every documented route is called
as an admin, an agent of the object's team, an agent of another team, the customer the object belongs
to, another customer and an anonymous visitor, against the whole platform, and each answer's class is
compared with what the route declares (``x-access.matrix``, from ``api.operation``):

- ``allow``: the call was taken: a 2xx, or a 4xx about the request itself (400, 409, 413, 415, 422, 429);
- ``deny``: 401, 403, or the 404 of something hidden.

A route in the document without a case here fails the test, so a new route cannot go unchecked. One
stack (SQLite) serves the whole module; about 380 requests.

The objects: a ticket of team ``alpha`` requested by the owning customer; a contact known only through a
ticket of ``alpha``; a chat that
customer started and the ``alpha`` agent joined; the ``alpha`` agent's own routing record (presence);
the ``alpha`` queue. The admin-only quarantine routes and the mail retry need a quarantined message and
a failed mail, which this stack has none of: those cases expect the record's own 404 code from the allowed actors (the call got
through the gateway's checks to the service) and 401/403 from the others.
"""
import uuid
from dataclasses import dataclass, field

import pytest
import requests

from stack import create_token, new_ticket, stack_fixture, wait_for

pytestmark = pytest.mark.e2e

ALLOWED_ERRORS = (400, 409, 413, 415, 422, 429)
DENIED = (401, 403, 404)


stack = stack_fixture("matrix", env={"HELPDESK_CHAT_ANSWER_TIMEOUT": "3600"})


@dataclass
class Call:
    path: dict = field(default_factory=dict)  # path parameters
    json: object = None
    params: dict = None
    absent: str = None  # the 404 code the allowed actors get: no such record exists in this stack


class World:
    """What the cases act on, made through the API as an admin."""

    def __init__(self, stack):
        self.stack, self.url, self.tag = stack, stack.url, uuid.uuid4().hex[:6]
        self.admin = stack.session()
        tag = self.tag
        self.alpha, self.beta = f"alpha-{tag}", f"beta-{tag}"
        for team in (self.alpha, self.beta):
            self.ok("POST", "/teams", {"name": team})
        self.agent_id = self.ok("POST", "/agents", {"name": "Al", "email": f"al-{tag}@example.com",
                                                    "teams": [self.alpha]})["id"]
        self.ok("POST", "/agents", {"name": "Bea", "email": f"bea-{tag}@example.com", "teams": [self.beta]})
        self.emails = {"owner": f"owner-{tag}@example.com", "other_customer": f"other-{tag}@example.com"}
        self.sessions = {
            "admin": self.admin,
            "team_agent": stack.session(create_token(stack, "agent", email=f"al-{tag}@example.com",
                                                     teams=[self.alpha])),
            "other_agent": stack.session(create_token(stack, "agent", email=f"bea-{tag}@example.com",
                                                      teams=[self.beta])),
            "owner": stack.session(create_token(stack, "customer", email=self.emails["owner"])),
            "other_customer": stack.session(create_token(stack, "customer", email=self.emails["other_customer"])),
            "anonymous": requests.Session(),
        }
        ticket = self.ok("POST", "/tickets", new_ticket(team=self.alpha, requester={"email": self.emails["owner"]},
                                                        subject="The printer prints nothing"))
        self.number = ticket["number"]
        # The contact routes act on a contact known only through a ticket of alpha: the owner's contact gets
        # tickets of no team along the way (their own requests), which every agent may see, and so the contact.
        self.contact_id = self.ok("POST", "/tickets", new_ticket(
            team=self.alpha, requester={"email": f"contact-{tag}@example.com"}))["requester"]["contact_id"]
        self.organisation_id = self.ok("POST", "/organisations", {"name": f"Acme {tag}",
                                                                  "domains": [f"acme-{tag}.example"]})["id"]
        wait_for(lambda: self.admin.get(f"{self.url}/api/v1/tickets/{self.number}/routing").status_code == 200,
                 timeout=30, what="routing to know the ticket")
        self.article_id = self.article("Printer prints nothing", status="published")
        self.suggestion_id = wait_for(lambda: self._suggestion(), timeout=30, what="a suggestion")
        chat = self.sessions["owner"].post(f"{self.url}/api/v1/chats", json={"message": "My printer!"}, timeout=10)
        assert chat.status_code == 201, chat.text
        self.chat_id = chat.json()["chat"]["id"]
        joined = self.sessions["team_agent"].post(f"{self.url}/api/v1/chats/{self.chat_id}/join", timeout=10)
        assert joined.status_code == 200, joined.text

    def ok(self, method, path, body=None):
        answer = self.admin.request(method, f"{self.url}/api/v1{path}", json=body, timeout=10)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def _suggestion(self):
        answer = requests.get(f"{self.url}/api/v1/kb/suggest", params={"text": "printer prints nothing"}, timeout=10)
        return answer.status_code == 200 and answer.json()["items"] and answer.json()["suggestion_id"]

    def article(self, title, status="draft"):
        return self.ok("POST", "/kb/articles", {"title": title, "body": f"{title}: check the cable.",
                                                "language": "en", "status": status})["id"]

    def rule(self, actor):
        return self.ok("POST", "/routing/rules", {"name": f"matrix-{actor}-{self.tag}", "actions": {"priority": "low"},
                                                  "conditions": {"words": [f"zz{self.tag}"]}})["id"]

    def contact(self, actor):
        return self.ok("POST", "/contacts", {"name": "Fresh", "identifiers": [
            {"kind": "email", "value": f"fresh-{actor}-{self.tag}@example.com"}]})["id"]

    def identifier(self, actor):
        added = self.ok("POST", f"/contacts/{self.contact_id}/identifiers",
                        {"kind": "email", "value": f"extra-{actor}-{self.tag}@example.com"})
        return next(i["id"] for i in added["identifiers"] if i["value"].startswith(f"extra-{actor}-"))

    def email(self, actor):
        return self.emails.get(actor, f"{actor}-{self.tag}@example.com")

    def canned(self, actor):
        """A canned reply the actor may delete: an agent's own; for the others one of the admin's (shared)."""
        session = self.sessions[actor] if actor in ("team_agent", "other_agent") else self.admin
        answer = session.post(f"{self.url}/api/v1/canned-replies", json={
            "title": f"m-{actor}", "body": "Hi", "shared": actor not in ("team_agent", "other_agent")}, timeout=10)
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def saved_report(self, actor):
        """A saved report the actor may read, run and delete: an agent's own; for the others one of the admin's."""
        session = self.sessions[actor] if actor in ("team_agent", "other_agent") else self.admin
        answer = session.post(f"{self.url}/api/v1/saved-reports", json={
            "name": f"m-{actor}-{uuid.uuid4().hex[:6]}", "measure": "volume", "period": "last_week"}, timeout=10)
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def own_ticket(self, actor):
        """A new ticket's body: customers give none of the requester (the token's address is used)."""
        body = new_ticket()
        if actor in ("owner", "other_customer"):
            del body["requester"]
        return body


def _chat_start(w, actor):
    body = {"message": "Hello?"}
    if actor == "anonymous":
        body.update(name="Visitor", email=f"visitor-{w.tag}@example.com")
    return Call(json=body)


T = "/api/v1/tickets/{number}"
CASES = {
    # tickets
    ("post", "/api/v1/tickets"): lambda w, a: Call(json=w.own_ticket(a)),
    ("get", "/api/v1/tickets"): lambda w, a: Call(),
    ("get", "/api/v1/tickets/counts"): lambda w, a: Call(),
    ("get", T): lambda w, a: Call(),
    ("patch", T): lambda w, a: Call(json={"tags": ["matrix"]}),
    ("post", T + "/messages"): lambda w, a: Call(json={"body": "Any news?", "visibility": "public"}),
    ("get", T + "/messages"): lambda w, a: Call(),
    ("get", T + "/history"): lambda w, a: Call(),
    ("post", "/api/v1/custom-fields"): lambda w, a: Call(json={"name": f"matrix_{a}", "label": "M", "type": "string"}),
    ("get", "/api/v1/custom-fields"): lambda w, a: Call(),
    ("get", "/api/v1/workflow"): lambda w, a: Call(),
    ("post", T + "/links"): lambda w, a: Call(json={"other": w.ok("POST", "/tickets", new_ticket(team=w.alpha))["number"]}),
    ("get", T + "/links"): lambda w, a: Call(),
    ("post", T + "/merge"): lambda w, a: Call(path={"number": w.ok("POST", "/tickets", new_ticket(team=w.alpha))["number"]},
                                              json={"into": w.number}),
    ("get", "/api/v1/canned-replies"): lambda w, a: Call(),
    ("post", "/api/v1/canned-replies"): lambda w, a: Call(json={"title": f"m-{a}", "body": "Hi {{customer_name}}"}),
    ("delete", "/api/v1/canned-replies/{reply_id}"): lambda w, a: Call(path={"reply_id": w.canned(a)}),
    ("get", T + "/canned-replies/{reply_id}"): lambda w, a: Call(path={"reply_id": w.canned("shared")}),
    ("put", T + "/follow"): lambda w, a: Call(),
    ("delete", T + "/follow"): lambda w, a: Call(),
    ("get", T + "/follow"): lambda w, a: Call(),
    ("get", "/api/v1/notifications"): lambda w, a: Call(),
    ("post", "/api/v1/notifications/read"): lambda w, a: Call(json={"all": True}),
    ("put", T + "/presence"): lambda w, a: Call(json={"typing": True}),
    ("get", T + "/presence"): lambda w, a: Call(),
    # problems
    ("get", "/api/v1/problems"): lambda w, a: Call(),
    ("post", "/api/v1/problems"): lambda w, a: Call(json={"subject": "Outage", "description": "One cause.",
                                                          "incidents": [w.number]}),
    ("get", "/api/v1/problems/{number}"): lambda w, a: Call(),
    ("post", "/api/v1/problems/{number}/incidents"): lambda w, a: Call(json={
        "incidents": [w.ok("POST", "/tickets", new_ticket(team=w.alpha))["number"]]}),
    ("post", "/api/v1/problems/{number}/updates"): lambda w, a: Call(json={"body": "We are on it."}),
    # intake
    ("post", "/api/v1/intake/web-form"): lambda w, a: Call(json={
        "subject": "Form", "description": "From the portal.", "requester": {"email": w.email(a)}}),
    ("post", T + "/replies"): lambda w, a: Call(json={"body": "The log.", "reply_id": f"reply-{a}", "attachments": [
        {"filename": "a.txt", "content_type": "text/plain", "content_base64": "aGk="}]}),
    ("post", "/api/v1/intake/webhooks/phone"): lambda w, a: Call(json={"call_id": f"c-{a}", "caller_number": "+46701234567"}),
    ("post", "/api/v1/intake/webhooks/social"): lambda w, a: Call(json={}),
    ("get", "/api/v1/intake/quarantine"): lambda w, a: Call(),
    ("post", "/api/v1/intake/quarantine/{quarantine_id}/retry"): lambda w, a: Call(
        path={"quarantine_id": 999999}, absent="quarantine_not_found"),
    ("get", "/api/v1/intake/quarantine/{quarantine_id}"): lambda w, a: Call(
        path={"quarantine_id": 999999}, absent="quarantine_not_found"),
    ("get", "/api/v1/intake/quarantine/{quarantine_id}/raw"): lambda w, a: Call(
        path={"quarantine_id": 999999}, absent="quarantine_not_found"),
    ("post", "/api/v1/intake/quarantine/{quarantine_id}/discard"): lambda w, a: Call(
        path={"quarantine_id": 999999}, absent="quarantine_not_found"),
    ("get", "/api/v1/intake/outgoing"): lambda w, a: Call(),
    ("post", "/api/v1/intake/outgoing/{mail_id}/retry"): lambda w, a: Call(path={"mail_id": 999999},
                                                                          absent="mail_not_found"),
    ("get", "/api/v1/intake/channels"): lambda w, a: Call(),
    ("get", T + "/attachments"): lambda w, a: Call(),
    ("get", T + "/attachments/{attachment_id}"): lambda w, a: Call(path={"attachment_id": 999999},
                                                                   absent="attachment_not_found"),
    # routing
    ("post", "/api/v1/agents"): lambda w, a: Call(json={"name": "New", "email": f"new-{a}-{w.tag}@example.com"}),
    ("get", "/api/v1/agents"): lambda w, a: Call(),
    ("get", "/api/v1/agents/{agent_id}"): lambda w, a: Call(path={"agent_id": w.agent_id}),
    ("patch", "/api/v1/agents/{agent_id}"): lambda w, a: Call(path={"agent_id": w.agent_id}, json={"capacity": 10}),
    ("put", "/api/v1/agents/{agent_id}/presence"): lambda w, a: Call(path={"agent_id": w.agent_id},
                                                                    json={"presence": "away"}),
    ("post", "/api/v1/teams"): lambda w, a: Call(json={"name": f"matrix-{a}-{w.tag}"}),
    ("get", "/api/v1/teams"): lambda w, a: Call(),
    ("patch", "/api/v1/teams/{name}"): lambda w, a: Call(path={"name": w.alpha}, json={"description": "Printers"}),
    ("post", "/api/v1/routing/rules"): lambda w, a: Call(json={"name": f"m-{a}", "actions": {"priority": "low"},
                                                               "conditions": {"words": [f"yy{w.tag}"]}}),
    ("get", "/api/v1/routing/rules"): lambda w, a: Call(),
    ("patch", "/api/v1/routing/rules/{rule_id}"): lambda w, a: Call(path={"rule_id": w.rule(a)},
                                                                    json={"enabled": False}),
    ("delete", "/api/v1/routing/rules/{rule_id}"): lambda w, a: Call(path={"rule_id": w.rule(a)}),
    ("get", "/api/v1/routing/queue"): lambda w, a: Call(params={"team": w.alpha}),
    ("put", T + "/assignment"): lambda w, a: Call(json={"agent_id": w.agent_id, "reason": "matrix"}),
    ("post", T + "/escalations"): lambda w, a: Call(json={"reason": "matrix", "to_team": w.alpha}),
    ("get", T + "/routing"): lambda w, a: Call(),
    # knowledge base
    ("post", "/api/v1/kb/articles"): lambda w, a: Call(json={"title": "New", "body": "Body", "language": "en"}),
    ("get", "/api/v1/kb/articles/{article_id}"): lambda w, a: Call(path={"article_id": w.article_id}),
    ("patch", "/api/v1/kb/articles/{article_id}"): lambda w, a: Call(path={"article_id": w.article_id},
                                                                    json={"tags": ["printers"]}),
    ("delete", "/api/v1/kb/articles/{article_id}"): lambda w, a: Call(path={"article_id": w.article(f"Gone {a}")}),
    ("get", "/api/v1/kb/articles/{article_id}/versions"): lambda w, a: Call(path={"article_id": w.article_id}),
    ("post", "/api/v1/kb/import"): lambda w, a: Call(json={"articles": [
        {"title": "Imported", "body": "Body", "language": "en", "external_id": f"matrix-{a}-{w.tag}"}]}),
    ("get", "/api/v1/kb/search"): lambda w, a: Call(params={"q": "printer"}),
    ("get", "/api/v1/kb/suggest"): lambda w, a: Call(params={"text": "printer"}),
    ("post", "/api/v1/kb/suggestions/opened"): lambda w, a: Call(json={"suggestion_id": w.suggestion_id,
                                                                      "article_id": w.article_id}),
    ("post", "/api/v1/kb/suggestions/{suggestion_id}/resolved"): lambda w, a: Call(
        path={"suggestion_id": w.suggestion_id}, json={}),
    ("get", T + "/suggestions"): lambda w, a: Call(),
    ("post", T + "/article-draft"): lambda w, a: Call(json={}),
    ("get", "/api/v1/kb/browse"): lambda w, a: Call(params={"lang": "en"}),
    ("get", T + "/satisfaction"): lambda w, a: Call(),
    ("post", T + "/resolution"): lambda w, a: Call(json={"solved": False}),  # 409 on an open ticket: nothing changes
    ("get", "/api/v1/kb/articles/{article_id}/translations"): lambda w, a: Call(path={"article_id": w.article_id}),
    # contacts
    ("post", "/api/v1/contacts"): lambda w, a: Call(json={"name": "New", "identifiers": [
        {"kind": "email", "value": f"new-{a}-{w.tag}@example.com"}]}),
    ("get", "/api/v1/contacts"): lambda w, a: Call(),
    ("get", "/api/v1/contacts/{contact_id}"): lambda w, a: Call(path={"contact_id": w.contact_id}),
    ("post", "/api/v1/contacts/{contact_id}/identifiers"): lambda w, a: Call(
        path={"contact_id": w.contact_id}, json={"kind": "email", "value": f"more-{a}-{w.tag}@example.com"}),
    ("delete", "/api/v1/contacts/{contact_id}/identifiers/{identifier_id}"): lambda w, a: Call(
        path={"contact_id": w.contact_id, "identifier_id": w.identifier(a)}),
    ("post", "/api/v1/contacts/{contact_id}/merge"): lambda w, a: Call(path={"contact_id": w.contact_id},
                                                                      json={"other": w.contact(a)}),
    ("get", "/api/v1/contacts/{contact_id}/personal-data"): lambda w, a: Call(path={"contact_id": w.contact_id}),
    # a fresh contact per actor: the shared one is still needed by the other cases
    ("post", "/api/v1/contacts/{contact_id}/erasure"): lambda w, a: Call(path={"contact_id": w.contact(a)}),
    ("put", T + "/contact"): lambda w, a: Call(json={"contact_id": w.contact_id}),
    # organisations (agents read, admins change)
    ("post", "/api/v1/organisations"): lambda w, a: Call(json={"name": f"Org {a}",
                                                              "domains": [f"{a.replace('_', '-')}-{w.tag}.example"]}),
    ("get", "/api/v1/organisations"): lambda w, a: Call(),
    ("get", "/api/v1/organisations/{organisation_id}"): lambda w, a: Call(path={"organisation_id": w.organisation_id}),
    ("patch", "/api/v1/organisations/{organisation_id}"): lambda w, a: Call(
        path={"organisation_id": w.organisation_id}, json={"shared": a == "admin"}),
    ("put", "/api/v1/contacts/{contact_id}/organisation"): lambda w, a: Call(
        path={"contact_id": w.contact_id}, json={"organisation_id": w.organisation_id}),
    # chat
    ("post", "/api/v1/chats"): _chat_start,
    ("get", "/api/v1/chats"): lambda w, a: Call(),
    ("post", "/api/v1/chats/{chat_id}/join"): lambda w, a: Call(path={"chat_id": w.chat_id}),
    ("post", "/api/v1/chats/{chat_id}/messages"): lambda w, a: Call(path={"chat_id": w.chat_id}, json={"body": "Hi"}),
    ("post", "/api/v1/chats/{chat_id}/leave"): lambda w, a: Call(path={"chat_id": w.chat_id}),
    ("get", "/api/v1/chats/{chat_id}/entries"): lambda w, a: Call(path={"chat_id": w.chat_id}),
    ("get", "/api/v1/chats/{chat_id}/stream"): lambda w, a: Call(path={"chat_id": w.chat_id}),
    # reports
    ("get", "/api/v1/reports/{measure}"): lambda w, a: Call(path={"measure": "volume"},
                                                           params={"from": "2026-01-01", "to": "2026-02-01"}),
    ("post", "/api/v1/saved-reports"): lambda w, a: Call(json={"name": f"s-{a}-{w.tag}", "measure": "csat",
                                                               "period": "this_month", "group_by": "team"}),
    ("get", "/api/v1/saved-reports"): lambda w, a: Call(),
    ("get", "/api/v1/saved-reports/{report_id}"): lambda w, a: Call(path={"report_id": w.saved_report(a)}),
    ("delete", "/api/v1/saved-reports/{report_id}"): lambda w, a: Call(path={"report_id": w.saved_report(a)}),
    ("get", "/api/v1/saved-reports/{report_id}/report"): lambda w, a: Call(path={"report_id": w.saved_report(a)}),
    ("post", "/api/v1/surveys/csat"): lambda w, a: Call(json={
        "survey_id": f"m-{a}-{w.tag}", "answer_id": f"m-{a}-{w.tag}", "ticket": "HD-000001", "rating": 4,
        "channel": "email", "submitted_at": "2026-01-02T10:00:00+00:00"}),
    ("post", "/api/v1/surveys/nps"): lambda w, a: Call(json={
        "survey_id": f"n-{a}-{w.tag}", "answer_id": f"n-{a}-{w.tag}", "score": 9,
        "submitted_at": "2026-01-02T10:00:00+00:00"}),
    ("post", "/api/v1/chats/{chat_id}/stream-ticket"): lambda w, a: Call(path={"chat_id": w.chat_id}),
    # tokens and the audit log
    ("get", "/api/v1/tokens"): lambda w, a: Call(),
    ("post", "/api/v1/tokens"): lambda w, a: Call(json={"name": f"matrix-{a}", "role": "agent"}),
    ("delete", "/api/v1/tokens/{token_id}"): lambda w, a: Call(path={"token_id": 999999}, absent="token_not_found"),
    ("get", "/api/v1/audit"): lambda w, a: Call(),
    # people's accounts: invitations (admins) and password resets (anyone)
    ("post", "/api/v1/accounts/invitations"): lambda w, a: Call(json={"email": f"m-{a}-{w.tag}@example.org",
                                                                      "role": "agent"}),
    ("post", "/api/v1/accounts/{account_id}/invitation"): lambda w, a: Call(path={"account_id": 999999},
                                                                            absent="account_not_found"),
    ("post", "/api/v1/password-resets"): lambda w, a: Call(json={"email": f"nobody-{a}@example.org"}),
    # operations
    ("get", "/health"): lambda w, a: Call(),
    ("get", "/metrics"): lambda w, a: Call(),
    ("get", "/api/openapi.json"): lambda w, a: Call(),
}


def verdict(status):
    if status in DENIED:
        return "deny"
    if status < 300 or status in ALLOWED_ERRORS:
        return "allow"
    return f"error {status}"


def test_every_documented_route_answers_each_actor_as_declared(stack):
    document = requests.get(f"{stack.url}/api/openapi.json", timeout=10).json()
    routes = [(method, path, item["x-access"]) for path, methods in document["paths"].items()
              for method, item in methods.items()]
    missing = sorted(f"{m.upper()} {p}" for m, p, _ in routes if (m, p) not in CASES)
    assert not missing, f"documented routes without a case in the authorization matrix: {missing}"
    stale = sorted(f"{m.upper()} {p}" for m, p in set(CASES) - {(m, p) for m, p, _ in routes})
    assert not stale, f"cases for routes that are not documented: {stale}"

    world = World(stack)
    mismatches, calls = [], 0
    for method, path, access in routes:
        matrix = access["matrix"]
        assert set(matrix) == set(world.sessions), (path, matrix)
        for actor, session in world.sessions.items():
            call = CASES[(method, path)](world, actor)
            url = stack.url + path.format(**{"number": world.number, **call.path})
            answer = session.request(method.upper(), url, json=call.json, params=call.params, timeout=15,
                                     stream=path.endswith("/stream"))
            status, calls = answer.status_code, calls + 1
            code = answer.json().get("error", {}).get("code") if status >= 400 else None
            answer.close()
            got, expected = verdict(status), matrix[actor]
            if call.absent and status == 404:
                got = "allow" if code == call.absent else "deny"
            if got != expected:
                mismatches.append(f"{method.upper()} {path} as {actor}: declared {expected}, got {status} {code}")
    assert calls >= 6 * len(routes)
    assert not mismatches, "\n".join(mismatches)


def test_the_declared_matrix_says_what_issue_17_asks():
    """The declarations themselves, read from the app: the routing routes that leaked are scoped."""
    from helpdesk_gateway.app import create_app  # noqa: F401  registers every blueprint
    from helpdesk_gateway.api import OPERATIONS

    by_route = {(op.method, op.rule): op for op in OPERATIONS}
    for route in (("PUT", "/api/v1/tickets/<number>/assignment"), ("POST", "/api/v1/tickets/<number>/escalations"),
                  ("GET", "/api/v1/tickets/<number>/routing"), ("GET", "/api/v1/routing/queue"),
                  ("PUT", "/api/v1/agents/<agent_id>/presence"), ("GET", "/api/v1/contacts/<int:contact_id>"),
                  ("GET", "/api/v1/chats/<chat_id>/entries")):
        matrix = by_route[route].matrix()
        assert (matrix["team_agent"], matrix["other_agent"], matrix["other_customer"]) == ("allow", "deny", "deny"), route
    assert by_route[("POST", "/api/v1/tickets")].scope == "own"
