"""People, admin pages and the chat console in a real browser (Debian's Chromium through Playwright) against the whole
platform: invitations and password resets go out through intake's outgoing mail to a real SMTP sink.

One platform for the module, on SQLite (as tests/ui/test_workspace_browser.py, for the same reason).
Screenshots go to docs/screenshots/.
"""
import os
import re
import sys

import pytest
import requests

from helpdesk_common.testing import wait_for
from stack import ROOT
from ui_kit import create_account, no_serious_violations, shot as _shot, sign_in

sys.path.insert(0, os.path.join(ROOT, "gateway", "tests"))
from oidc_provider import OidcProvider  # noqa: E402  the gateway tests' real OpenID provider on loopback

pytestmark = pytest.mark.e2e

LINK = re.compile(r"(http://127\.0\.0\.1:\d+/password/set/\S+)")


@pytest.fixture(scope="module")
def oidc_provider():
    provider = OidcProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def platform(ui_platform, smtp_sink, oidc_provider):
    return ui_platform("stack-admin", {
        "HELPDESK_SMTP_URL": smtp_sink.url, "HELPDESK_SUPPORT_ADDRESS": "support@helpdesk.test",
        "HELPDESK_MAIL_POLL_INTERVAL": "0.2", **oidc_provider.env()})


class World:
    def __init__(self, stack):
        self.stack, self.url = stack, stack.url
        self.api = stack.session()
        self.account("admin@example.org", "admin", "Alex Admin")

    def account(self, email, role, name=None):
        create_account(self.stack, email, role, name)


@pytest.fixture(scope="module")
def world(platform):
    return World(platform)


def shot(page, name):
    _shot(page, name, full_page=False)  # the window: the admin pages' forms run long


@pytest.fixture(scope="module")
def admin_page(browser, world):
    page = browser.page("admin")
    sign_in(page, world, "admin@example.org")
    return page


def link_in(mail):
    return LINK.search(mail.get_content()).group(1)


def choose_password(page, link, password):
    page.goto(url=link)
    page.fill(selector="#password", value=password)
    page.fill(selector="#password_again", value=password)
    page.click(selector="form button[type=submit]")
    page.wait_for(selector="#sign-in-title")


def test_an_admin_invites_a_supervisor_who_chooses_a_password_from_the_mail(admin_page, browser, world, smtp_sink):
    admin_page.goto(url=f"{world.url}/workspace/admin/people")
    admin_page.fill(selector="#invite-email", value="cleo@example.org")
    admin_page.fill(selector="#invite-name", value="Cleo de Vries")
    admin_page.select(selector="#invite-role", value="supervisor")
    admin_page.select(selector="#invite-language", value="nl")
    admin_page.click(selector="form[action$='/people'] button[type=submit]")
    admin_page.wait_for_text(selector=".flash-success", text="cleo@example.org")
    assert "Cleo de Vries" in admin_page.text(selector="#people")
    no_serious_violations(admin_page)
    shot(admin_page, "admin-people-en")

    (mail,) = smtp_sink.wait_for("cleo@example.org", timeout=30)
    assert mail["Content-Language"] == "nl" and "Alex Admin" in mail.get_content()
    assert mail["Auto-Submitted"] == "auto-generated" and mail["X-Helpdesk-Ticket"] is None
    page = browser.page("cleo", locale="nl-NL")
    page.goto(url=link_in(mail))
    no_serious_violations(page)
    shot(page, "password-set-nl")
    choose_password(page, link_in(mail), "cleo's own password")
    sign_in(page, world, "cleo@example.org", "cleo's own password")
    assert "Alle tickets" in page.text(selector="main h1")


def test_a_forgotten_password_is_reset_by_a_link_that_works_once(browser, world, smtp_sink):
    world.account("dag@example.org", "admin", "Dag Svensson")
    page = browser.page("dag", locale="sv-SE")
    page.goto(url=f"{world.url}/sign-in")
    page.click(selector="a[href='/password/forgot']")
    page.fill(selector="#email", value="dag@example.org")
    page.click(selector="form button[type=submit]")
    page.wait_for(selector="#forgot-sent")
    no_serious_violations(page)
    shot(page, "password-forgot-sv")

    (mail,) = smtp_sink.wait_for("dag@example.org", timeout=30)
    assert "Dag Svensson" in mail.get_content()
    link = link_in(mail)
    choose_password(page, link, "a brand new password")
    sign_in(page, world, "dag@example.org", "a brand new password")
    assert page.goto(url=link) == 410  # used once: dead
    assert page.count(selector="#link-dead") == 1
    outgoing = world.api.get(f"{world.url}/api/v1/intake/outgoing", timeout=10).json()
    account_mails = [m for m in outgoing if m["kind"] == "account"]
    assert {m["to"] for m in account_mails} >= {"dag@example.org", "cleo@example.org"}
    assert all("/password/set/" not in str(m) for m in account_mails)  # operators never see the links


def test_an_admin_creates_a_team_an_agent_and_a_rule_and_a_new_ticket_follows_the_rule(admin_page, world, smtp_sink):
    admin_page.goto(url=f"{world.url}/workspace/admin/teams")
    admin_page.fill(selector="#team-name", value="billing")
    admin_page.select(selector="#team-strategy", value="least_loaded")
    admin_page.click(selector="#new-team button[type=submit]")
    admin_page.wait_for_text(selector="#teams", text="billing")
    admin_page.click(selector="#teams a:has-text('billing')")  # a team changed in place
    admin_page.fill(selector="#team-description", value="Wires and Wi-Fi")
    admin_page.click(selector="#edit-team button[type=submit]")
    admin_page.wait_for_text(selector="#teams", text="Wires and Wi-Fi")

    admin_page.goto(url=f"{world.url}/workspace/admin/agents")
    admin_page.fill(selector="#agent-name", value="Bo Berg")
    admin_page.fill(selector="#agent-email", value="bo@example.org")
    admin_page.fill(selector="#agent-languages", value="sv, en")
    admin_page.fill(selector="#agent-skills", value="invoices:4")
    admin_page.check(selector="#new-agent input[name=teams][value=billing]")
    admin_page.fill(selector="#agent-capacity", value="3")
    admin_page.select(selector="#agent-presence", value="online")
    admin_page.check(selector="#new-agent input[name=invite]")
    admin_page.click(selector="#new-agent button[type=submit]")
    admin_page.wait_for_text(selector="#agents", text="Bo Berg")
    no_serious_violations(admin_page)
    shot(admin_page, "admin-agents-en")
    (invitation,) = smtp_sink.wait_for("bo@example.org", timeout=30)  # one person, one identity: invited too
    assert "/password/set/" in invitation.get_content()

    admin_page.goto(url=f"{world.url}/workspace/admin/rules")
    admin_page.fill(selector="#rule-name", value="Invoices to billing")
    admin_page.fill(selector="#if-words", value="invoice, refund")
    admin_page.select(selector="#then-team", value="billing")
    admin_page.select(selector="#then-priority", value="high")
    admin_page.click(selector="#new-rule button[type=submit]")
    admin_page.wait_for_text(selector="#rules", text="Invoices to billing")
    no_serious_violations(admin_page)
    shot(admin_page, "admin-rules-en")

    answer = world.api.post(f"{world.url}/api/v1/tickets", json={
        "subject": "Second invoice this month", "description": "I was charged twice.",
        "requester": {"email": "eva@example.se", "name": "Eva"}}, timeout=10)
    number = answer.json()["number"]
    bo = next(a for a in world.api.get(f"{world.url}/api/v1/agents", timeout=10).json() if a["name"] == "Bo Berg")

    def routed():
        ticket = world.api.get(f"{world.url}/api/v1/tickets/{number}", timeout=10).json()
        return ticket if ticket["assignee"] == bo["assignee"] else None

    ticket = wait_for(routed, timeout=20, message=f"{number} assigned to Bo by the rule")
    assert ticket["team"] == "billing" and ticket["priority"] == "high"
    routing = world.api.get(f"{world.url}/api/v1/tickets/{number}/routing", timeout=10).json()
    assert routing["team"] == "billing"

    # Each change was written to the audit log as its REST route writes it, by the admin's actor.
    audit = world.api.get(f"{world.url}/api/v1/audit", params={"limit": 200}, timeout=10).json()
    made = {entry["action"]: entry for entry in audit if entry["details"].get("via") == "workspace"}
    assert {"POST /api/v1/teams", "PATCH /api/v1/teams/<name>", "POST /api/v1/agents",
            "POST /api/v1/accounts/invitations", "POST /api/v1/routing/rules"} <= set(made)
    assert made["POST /api/v1/teams"]["details"]["body"]["name"] == "billing"
    assert made["POST /api/v1/agents"]["actor"].startswith("account-")


def test_an_admin_changes_a_rule_in_place_and_reorders_the_rules_by_keyboard(admin_page, world):
    def rules():
        return world.api.get(f"{world.url}/api/v1/routing/rules", timeout=10).json()

    for name, words in (("Printers first", "printer"), ("Refunds", "refund")):
        world.api.post(f"{world.url}/api/v1/routing/rules", timeout=10, json={
            "name": name, "conditions": {"words": [words]}, "actions": {"priority": "high"}}).raise_for_status()
    refunds = next(rule for rule in rules() if rule["name"] == "Refunds")
    admin_page.goto(url=f"{world.url}/workspace/admin/rules")
    for _ in range(refunds["position"] - 1):  # to the top, one place at a time, by the keyboard alone
        admin_page.evaluate(expression=f"document.getElementById('move-up-{refunds['id']}').focus()")
        admin_page.press(key="Enter")
        admin_page.wait_for_text(selector=".flash-success", text="Refunds")
    assert [rule["name"] for rule in rules()][0] == "Refunds"
    assert [rule["position"] for rule in rules()] == list(range(1, len(rules()) + 1))  # no gaps, no ties
    assert admin_page.url().endswith(f"#rule-{refunds['id']}")  # back at the moved rule's row
    assert admin_page.count(selector=f"#move-up-{refunds['id']}") == 0  # the first rule cannot go up
    no_serious_violations(admin_page)
    shot(admin_page, "admin-rules-ordered-en")

    admin_page.click(selector=f"#rule-{refunds['id']} a")
    admin_page.wait_for(selector="#edit-rule")
    assert admin_page.evaluate(expression="document.getElementById('if-words').value") == "refund"
    admin_page.fill(selector="#if-words", value="refund, chargeback")
    admin_page.select(selector="#then-team", value="billing")
    admin_page.select(selector="#rule-enabled", value="off")
    no_serious_violations(admin_page)
    shot(admin_page, "admin-rule-edit-en")
    admin_page.click(selector="#edit-rule button[type=submit]")
    admin_page.wait_for_text(selector=".flash-success", text="Refunds")
    changed = next(rule for rule in rules() if rule["id"] == refunds["id"])
    assert (changed["conditions"], changed["actions"], changed["enabled"], changed["position"]) == (
        {"words": ["refund", "chargeback"]}, {"priority": "high", "team": "billing"}, False, 1)
    audit = world.api.get(f"{world.url}/api/v1/audit", params={"limit": 50}, timeout=10).json()
    patches = [e for e in audit if e["action"] == "PATCH /api/v1/routing/rules/<int:rule_id>"]
    assert len(patches) == refunds["position"] and all(e["details"]["via"] == "workspace" for e in patches)


def test_an_admin_makes_an_api_token_sees_it_once_and_revokes_it(admin_page, world):
    admin_page.goto(url=f"{world.url}/workspace/admin/tokens")
    admin_page.fill(selector="#token-name", value="CRM sync")
    admin_page.select(selector="#token-role", value="agent")
    admin_page.fill(selector="#token-email", value="crm@example.org")
    admin_page.check(selector="#token-form input[name=scopes][value=read]")
    admin_page.select(selector="#token-expiry", value="30")
    admin_page.click(selector="#token-form button[type=submit]")
    admin_page.wait_for(selector="#new-token-secret")
    secret = admin_page.evaluate(expression="document.getElementById('new-token-secret').value")
    no_serious_violations(admin_page)
    shot(admin_page, "admin-tokens-en")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert requests.get(f"{world.url}/api/v1/tickets", headers=bearer, timeout=10).status_code == 200
    refused = requests.post(f"{world.url}/api/v1/tickets", headers=bearer, timeout=10, json={
        "subject": "x", "description": "y", "requester": {"email": "eva@example.se"}})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "scope_not_allowed"  # read only

    admin_page.goto(url=f"{world.url}/workspace/admin/tokens")  # listed, never shown again
    assert secret not in admin_page.content() and "CRM sync" in admin_page.text(selector="#tokens")
    admin_page.click(selector="#tokens tr:has-text('CRM sync') form button")
    admin_page.wait_for_text(selector=".flash-success", text="revoked")
    assert requests.get(f"{world.url}/api/v1/tickets", headers=bearer, timeout=10).status_code == 401


@pytest.mark.parametrize("locale", ["nl-NL", "sv-SE"])
def test_the_admin_pages_in_dutch_and_swedish(browser, world, locale):
    page = browser.page(f"admin-{locale}", locale=locale)
    sign_in(page, world, "admin@example.org")
    world.api.post(f"{world.url}/api/v1/teams", json={"name": "field"}, timeout=10)  # 201, or 409 when there
    rule = world.api.get(f"{world.url}/api/v1/routing/rules", timeout=10).json()[0]
    for section in ("people", "agents", "teams", "teams/field", "rules", f"rules/{rule['id']}", "fields", "tokens"):
        page.goto(url=f"{world.url}/workspace/admin/{section}")
        no_serious_violations(page)
        assert page.evaluate(expression="document.documentElement.lang") == locale[:2]
    page.goto(url=f"{world.url}/workspace/admin/agents")
    shot(page, f"admin-agents-{locale[:2]}")
    page.goto(url=f"{world.url}/workspace/admin/rules")
    shot(page, f"admin-rules-{locale[:2]}")
    page.goto(url=f"{world.url}/workspace/admin/tokens")
    shot(page, f"admin-tokens-{locale[:2]}")


def test_single_sign_on_through_a_real_openid_provider_links_the_account_by_email(browser, world, oidc_provider):
    oidc_provider.user("alex.sso", email="Admin@Example.org", name="Alex", email_verified=True)
    oidc_provider.user("mallory.sso", email="mallory@example.org", email_verified=True)
    page = browser.page("sso", locale="sv-SE")
    page.goto(url=f"{world.url}/sign-in")
    no_serious_violations(page)
    shot(page, "sign-in-sso-sv")
    page.click(selector="#oidc-sign-in")
    page.fill(selector="input[name=sub]", value="mallory.sso")  # the provider's own form
    page.click(selector="button:has-text('Authorize')")
    page.wait_for(selector="#sign-in-error")
    assert "mallory@example.org" in page.text(selector="#sign-in-error")  # unknown email: refused, nothing made

    page.click(selector="#oidc-sign-in")
    page.fill(selector="input[name=sub]", value="alex.sso")
    page.click(selector="button:has-text('Authorize')")
    page.wait_for(selector="#ticket-rows")
    assert "Alex Admin" in page.text(selector=".who")


XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def test_a_chat_from_start_to_transcript(admin_page, browser, world):
    admin_page.goto(url=f"{world.url}/workspace/chats")  # open before the chat starts: the list is pushed
    admin_page.wait_for(selector="[data-live=open]", state="attached")
    admin_page.evaluate(expression="window.__consoleNotReloaded = true")
    started = requests.post(f"{world.url}/api/v1/chats", json={  # a visitor of the portal: no token
        "name": "Eva Ångström", "email": "eva@example.se", "message": "My router blinks red"}, timeout=10)
    assert started.status_code == 201, started.text
    chat, customer = started.json()["chat"], {"X-Chat-Token": started.json()["token"]}
    api = world.api

    admin_page.wait_for_text(selector="#waiting-chats", text="My router blinks red")
    assert admin_page.evaluate(expression="window.__consoleNotReloaded") is True  # the console polls no more
    assert admin_page.evaluate(expression="document.getElementById('chat-lists').getAttribute('hx-trigger')") == "sse:chats"
    no_serious_violations(admin_page)
    shot(admin_page, "chats-en")
    admin_page.click(selector=f"tr[data-chat='{chat['id']}'] button")
    admin_page.wait_for(selector="#chat-form")
    admin_page.wait_for(selector="[data-live=open]", state="attached")
    admin_page.evaluate(expression="window.__notReloaded = true")

    def say(body):  # the customer, through the chat API with the chat's token
        answer = requests.post(f"{world.url}/api/v1/chats/{chat['id']}/messages", headers=customer,
                               json={"body": body}, timeout=10)
        assert answer.status_code == 201, answer.text

    say("It started this morning")
    admin_page.wait_for_text(selector="#transcript .chat-customer", text="started this morning", timeout=10000)
    admin_page.fill(selector="#chat-body", value="Please unplug it for ten seconds.")
    admin_page.click(selector="#chat-form button[type=submit]")
    admin_page.wait_for_text(selector="#transcript .chat-agent", text="unplug it")
    # the live stream may show the message before the post's own answer swaps in the emptied form
    wait_for(lambda: admin_page.evaluate(expression="document.getElementById('chat-body').value") == "",
             timeout=10, message="the reply box emptied after sending")
    say(f"Done {XSS}")
    admin_page.wait_for_text(selector="#transcript .chat-customer", text="Done", timeout=10000)
    assert admin_page.count(selector="main img") == 0
    assert admin_page.evaluate(expression="window.__xss === undefined && window.__notReloaded === true") is True
    entries = requests.get(f"{world.url}/api/v1/chats/{chat['id']}/entries", headers=customer, timeout=10).json()
    assert "Please unplug it for ten seconds." in [e.get("body") for e in entries["entries"]]
    no_serious_violations(admin_page)
    shot(admin_page, "chat-en")

    admin_page.click(selector="#chat-leave button")
    admin_page.wait_for_text(selector="#chat-state", text="Ended")
    number = admin_page.text(selector="#chat-ticket a")

    def transcribed():
        bodies = [m["body"] for m in api.get(f"{world.url}/api/v1/tickets/{number}/messages", timeout=10).json()]
        return bodies if any("unplug it" in body for body in bodies) and any(body.startswith("Done") for body in bodies) else None

    bodies = wait_for(transcribed, timeout=20, message=f"the chat's transcript on {number}")
    assert "It started this morning" in bodies
    ticket = api.get(f"{world.url}/api/v1/tickets/{number}", timeout=10).json()
    assert ticket["channel"] == "chat" and ticket["description"] == "My router blinks red"


@pytest.mark.parametrize("locale", ["nl-NL", "sv-SE"])
def test_the_chat_console_in_dutch_and_swedish(browser, world, locale):
    answer = requests.post(f"{world.url}/api/v1/chats", json={
        "name": "Wim", "email": "wim@example.nl", "message": f"Hallo ({locale})"}, timeout=10)
    assert answer.status_code == 201
    page = browser.page(f"chat-{locale}", locale=locale)
    sign_in(page, world, "admin@example.org")
    page.goto(url=f"{world.url}/workspace/chats")
    page.wait_for_text(selector="#waiting-chats", text=f"Hallo ({locale})")
    no_serious_violations(page)
    shot(page, f"chats-{locale[:2]}")
    page.click(selector=f"tr[data-chat='{answer.json()['chat']['id']}'] button")
    page.wait_for(selector="#chat-form")
    no_serious_violations(page)
    shot(page, f"chat-{locale[:2]}")
