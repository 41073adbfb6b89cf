"""The agent workspace in a real browser (Debian's Chromium through Playwright) against the whole platform.

One platform for the module, on SQLite only: the pages call the same gateway functions as the REST API,
whose PostgreSQL behaviour the e2e tests cover, so a second database would only double CI time here.
The browser runs in its own process (``browser.py``: Playwright hangs in the eventlet-patched test process).

Screenshots go to docs/screenshots/ (the README shows them).
"""
import os
import re
import time
import uuid

import pytest
import requests

from helpdesk_common.testing import wait_for
from ui_kit import PASSWORD, SHOTS, World, no_serious_violations, sign_in  # tests/ui/conftest.py: on the path

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def platform(ui_platform):
    # Every page open in the module holds a live stream: room for them beside the requests (a stream takes a
    # thread; a worker keeps half its threads for requests).
    return ui_platform("stack-ui", gateway_threads=48)


@pytest.fixture(scope="module")
def world(platform):
    return World(platform)


@pytest.fixture(scope="module")
def admin_page(browser, world):
    page = browser.page("admin")
    page.goto(url=f"{world.url}/sign-in")
    no_serious_violations(page)
    page.screenshot(path=os.path.join(SHOTS, "sign-in.png"), full_page=False)
    sign_in(page, world, "admin@example.org")
    return page


def test_the_root_leads_to_the_sign_in(browser, world):
    page = browser.page("visitor")
    page.goto(url=f"{world.url}/")
    assert page.url().endswith("/sign-in")


def test_a_new_ticket_appears_in_the_open_list_without_reload(admin_page, world):
    admin_page.goto(url=f"{world.url}/workspace/tickets?view=all")
    admin_page.wait_for(selector="[data-live=open]", state="attached")
    admin_page.evaluate(expression="window.__notReloaded = true")
    subject = f"Printer on fire {uuid.uuid4().hex[:6]}"
    number = world.ticket(subject, team="network")
    admin_page.wait_for_text(selector="#ticket-rows tr", text=subject, timeout=10000)
    assert admin_page.evaluate(expression="window.__notReloaded") is True  # the same page, updated in place
    admin_page.press(key="/")
    assert admin_page.focused() == "f-text"
    assert number in admin_page.text(selector="#ticket-rows")
    no_serious_violations(admin_page)


def test_reply_internal_note_and_status_change(admin_page, world):
    number = world.ticket("VPN drops every 5 minutes", team="network")
    admin_page.goto(url=f"{world.url}/workspace/tickets/{number}")
    admin_page.fill(selector="#body", value="Could you send us the VPN client's log?")
    admin_page.click(selector="form[action$='/messages'] button[type=submit]")
    admin_page.wait_for_text(selector=".message-public .body", text="VPN client's log")
    # the live stream may show the reply before the post's own answer swaps in the emptied form (which
    # would take the focus from a shortcut pressed in between)
    wait_for(lambda: admin_page.evaluate(expression="document.getElementById('body').value") == "",
             timeout=10, message="the reply box emptied after sending")
    admin_page.press(key="n")  # the keyboard shortcut for an internal note
    wait_for(lambda: admin_page.focused() == "body", timeout=5, message="the note box focused by 'n'")
    admin_page.fill(selector="#body", value="Looks like the MTU again; checking with the network team.")
    admin_page.click(selector="form[action$='/messages'] button[type=submit]")
    admin_page.wait_for_text(selector=".message-internal", text="MTU again")
    assert "Internal note" in admin_page.text(selector=".message-internal")
    assert admin_page.count(selector=".message-internal") == 1
    admin_page.select(selector="#status", value="in_progress")
    admin_page.click(selector="form[action$='/changes'] button[type=submit]")
    admin_page.wait_for_text(selector="#ticket-status", text="In progress")
    ticket = world.api.get(f"{world.url}/api/v1/tickets/{number}", timeout=10).json()
    assert ticket["status"] == "in_progress"
    visibilities = [m["visibility"] for m in world.messages(number)]
    assert visibilities == ["public", "internal"]
    no_serious_violations(admin_page)
    admin_page.screenshot(path=os.path.join(SHOTS, "ticket.png"))

    # Another agent's change and the customer's reply reach the open page without reload.
    admin_page.wait_for(selector="[data-live=open]", state="attached")
    admin_page.evaluate(expression="window.__notReloaded = true")
    world.api.patch(f"{world.url}/api/v1/tickets/{number}", json={"status": "pending"}, timeout=10).raise_for_status()
    admin_page.wait_for_text(selector="#ticket-status", text="Pending", timeout=10000)
    world.api.post(f"{world.url}/api/v1/tickets/{number}/messages",
                   json={"body": "Log attached, see below", "visibility": "public"}, timeout=10).raise_for_status()
    admin_page.wait_for_text(selector="#conversation .message-public", text="Log attached", timeout=10000)
    assert admin_page.evaluate(expression="window.__notReloaded") is True


@pytest.fixture(scope="module")
def busy_desk(world):
    """A few more tickets of several kinds, so that the list's screenshots show a working day."""
    for subject, team, priority, channel in (
            ("Invoice charged twice in November", "billing", "urgent", "email"),
            ("Laptop will not wake from sleep", "network", "normal", "phone"),
            ("Shared drive asks for a password again", "network", "high", "chat"),
            ("Refund for the cancelled order", "billing", "low", "web")):
        world.api.post(f"{world.url}/api/v1/tickets", json={
            "subject": subject, "description": "Since this morning", "priority": priority, "channel": channel,
            "team": team, "requester": {"email": "eva@example.se", "name": "Eva Ångström"}},
            timeout=10).raise_for_status()


@pytest.mark.parametrize("locale, words", [("en-GB", "All tickets"), ("nl-NL", "Alle tickets"),
                                           ("sv-SE", "Alla ärenden")])
def test_the_list_in_each_language(browser, world, busy_desk, locale, words):
    page = browser.page(f"admin-{locale}", locale=locale, timezone="Europe/Stockholm")
    sign_in(page, world, "admin@example.org")
    page.goto(url=f"{world.url}/workspace/tickets?view=all")
    assert words in page.text(selector="main h1")
    no_serious_violations(page)
    page.screenshot(path=os.path.join(SHOTS, f"tickets-{locale[:2]}.png"), full_page=False)


def test_filter_sort_page_and_move_with_the_keyboard(admin_page, world):
    tag = f"t{uuid.uuid4().hex[:6]}"
    made = []
    for subject, priority in (("Low one", "low"), ("Urgent one", "urgent"), ("High one", "high")):
        answer = world.api.post(f"{world.url}/api/v1/tickets", json={
            "subject": f"{subject} {tag}", "description": "Sorting", "priority": priority, "channel": "phone",
            "tags": [tag], "requester": {"email": "eva@example.se"}}, timeout=10)
        answer.raise_for_status()
        made.append(answer.json()["number"])
    world.ticket(f"Not tagged {tag}", team="network")  # found by text, not by the tag filter
    admin_page.goto(url=f"{world.url}/workspace/tickets?view=all")
    admin_page.fill(selector="#f-tag", value=tag)
    admin_page.select(selector="#f-channel", value="phone")
    admin_page.select(selector="#f-sort", value="priority")
    admin_page.click(selector="form.filters button[type=submit]")
    admin_page.wait_for(selector=f"#ticket-rows tr[data-number='{made[1]}']")
    order = admin_page.evaluate(expression="Array.from(document.querySelectorAll('#ticket-rows tbody tr'))"
                                           ".map(r => r.dataset.number)")
    assert order == [made[1], made[2], made[0]]  # urgent, high, low; the untagged one is not there
    api = world.api.get(f"{world.url}/api/v1/tickets", params={"tag": tag, "channel": "phone", "sort": "priority",
                                                               "limit": 2}, timeout=10).json()
    assert [t["number"] for t in api["items"]] == order[:2]  # REST parity: the same filters, sort and pages
    rest = world.api.get(f"{world.url}/api/v1/tickets", params={"tag": tag, "channel": "phone", "sort": "priority",
                                                                "limit": 2, "cursor": api["next_cursor"]},
                         timeout=10).json()
    assert [t["number"] for t in rest["items"]] == order[2:] and rest["next_cursor"] is None
    admin_page.press(key="j")
    admin_page.press(key="j")
    assert admin_page.evaluate(expression="document.activeElement.textContent") == made[2]
    admin_page.press(key="k")
    assert admin_page.evaluate(expression="document.activeElement.textContent") == made[1]
    no_serious_violations(admin_page)


def session_of(world, email):
    """A plain HTTP client signed in through the form (for what a browser would not send)."""
    http = requests.Session()
    form = http.get(f"{world.url}/sign-in", timeout=10).text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form).group(1)
    answer = http.post(f"{world.url}/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": token},
                       allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return http


def test_a_wrong_or_missing_csrf_token_is_refused_and_nothing_changes(world):
    number = world.ticket("CSRF target", team="network")
    http = session_of(world, "admin@example.org")
    for data in ({"body": "forged"}, {"body": "forged", "csrf_token": "0" * 64}):
        answer = http.post(f"{world.url}/workspace/tickets/{number}/messages", data=data, timeout=10)
        assert answer.status_code == 403 and answer.headers["Content-Type"].startswith("text/html")
        assert "nothing was changed" in answer.text
    answer = http.post(f"{world.url}/workspace/tickets/{number}/changes", data={"status": "closed"}, timeout=10)
    assert answer.status_code == 403
    assert world.messages(number) == []
    assert world.api.get(f"{world.url}/api/v1/tickets/{number}", timeout=10).json()["status"] == "new"


XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def test_html_in_a_subject_and_a_message_renders_inert(admin_page, world):
    number = world.ticket(f"Broken {XSS}", team="network", description=f"Body {XSS}")
    world.api.post(f"{world.url}/api/v1/tickets/{number}/messages",
                   json={"body": f"Reply {XSS}", "visibility": "public"}, timeout=10).raise_for_status()
    for path in ("/workspace/tickets?view=all", f"/workspace/tickets/{number}"):
        admin_page.goto(url=world.url + path)
        assert admin_page.count(selector="main img") == 0
        assert admin_page.evaluate(expression="window.__xss === undefined") is True
    assert XSS in admin_page.text(selector="h1")
    assert f"Reply {XSS}" in admin_page.text(selector="#conversation")


def test_a_team_limited_agent_sees_no_other_teams_ticket_in_the_list_or_the_live_stream(browser, world):
    billing = world.ticket("Invoice twice", team="billing")
    network = world.ticket("Switch down", team="network")
    page = browser.page("ada")
    sign_in(page, world, "ada@example.org")
    page.goto(url=f"{world.url}/workspace/tickets?view=all")
    rows = page.text(selector="#ticket-rows")
    assert network in rows and billing not in rows
    billing_tickets = world.api.get(f"{world.url}/api/v1/tickets", params={"team": "billing", "limit": 100},
                                    timeout=10).json()["items"]
    assert int(page.text(selector="#count-all")) == world.counts()["all"] - len(billing_tickets)  # exact, hers
    for view in ("unassigned", "sla_breached"):
        page.goto(url=f"{world.url}/workspace/tickets?view={view}")
        assert billing not in page.text(selector="#ticket-rows")
    page.goto(url=f"{world.url}/workspace/tickets?view=all&text=Invoice")  # search
    assert billing not in page.text(selector="#ticket-rows")
    assert page.goto(url=f"{world.url}/workspace/tickets/{billing}") == 404

    page.goto(url=f"{world.url}/workspace/tickets/{network}")  # take it: the PATCH route's path, through routing
    page.click(selector="form[action$='/changes'] input[name=assignee][value=me] ~ button")
    page.wait_for_text(selector=".flash-success", text=network)
    taken = world.api.get(f"{world.url}/api/v1/tickets/{network}", timeout=10).json()
    ada = next(a for a in world.api.get(f"{world.url}/api/v1/agents", timeout=10).json() if a["name"] == "Ada Lovelace")
    assert taken["assignee"] == ada["assignee"]
    page.goto(url=f"{world.url}/workspace/tickets?view=mine")
    assert network in page.text(selector="#ticket-rows")

    http = session_of(world, "ada@example.org")
    with http.get(f"{world.url}/workspace/live", stream=True, timeout=20) as stream:
        assert stream.status_code == 200, stream.text
        lines = stream.iter_lines(decode_unicode=True)
        next(lines)  # "retry:" first: the stream is listening from here on
        hidden, seen = world.ticket("Refund please", team="billing"), world.ticket("Wifi slow", team="network")
        heard = []
        deadline = time.monotonic() + 15
        while seen not in " ".join(heard) and time.monotonic() < deadline:
            line = next(lines)
            if line.startswith("data:"):
                heard.append(line)
    assert any(seen in line for line in heard), heard
    assert not any(hidden in line for line in heard), heard
