"""The supervisor dashboard and proactive problem detection in a real browser (Debian's Chromium through
Playwright) against the whole platform: a surge of similar tickets is announced by analytics, shown live on the
dashboard, turned into one problem from there; one update reaches each customer by mail through intake's
outgoing mail (a real SMTP sink), and solving the problem solves its incidents. The weekly summary reaches each
supervisor once, however often its timer fires (every second here).

One platform for the module, on SQLite (as tests/ui/test_admin_browser.py). Screenshots go to docs/screenshots/.
"""
import pytest

from helpdesk_common.testing import wait_for
from stack import new_ticket
from ui_kit import create_account, no_serious_violations, shot, sign_in

pytestmark = pytest.mark.e2e

SURGE = 8  # similar tickets within minutes, with no history before them: a surge by any measure
SUMMARY_TO = ("sue@example.org", "nora@example.org")
WORDINGS = ["Checkout fails with error 503", "Error 503 when paying at checkout", "Checkout page error 503",
            "Paying fails: checkout error 503"]


@pytest.fixture(scope="module")
def platform(ui_platform, smtp_sink):
    return ui_platform("stack-dashboard", {
        "HELPDESK_SMTP_URL": smtp_sink.url, "HELPDESK_SURGE_INTERVAL": "1",
        "HELPDESK_WEEKLY_SUMMARY_TO": ",".join(SUMMARY_TO), "HELPDESK_WEEKLY_SUMMARY_INTERVAL": "1",
        "HELPDESK_SUPPORT_ADDRESS": "support@helpdesk.test", "HELPDESK_MAIL_POLL_INTERVAL": "0.2"})


class World:
    def __init__(self, stack):
        self.stack, self.url = stack, stack.url
        self.api = stack.session()
        for email, name, language in (("sue@example.org", "Sue Supervisor", "en"),
                                      ("nora@example.org", "Nora Nederland", "nl"),
                                      ("sven@example.org", "Sven Svensson", "sv")):
            create_account(stack, email, "supervisor", name, language)
        self.customers = [f"customer-{i}@example.com" for i in range(SURGE)]
        self.numbers = []
        for i, email in enumerate(self.customers):
            answer = self.api.post(f"{self.url}/api/v1/tickets", json=new_ticket(
                subject=WORDINGS[i % len(WORDINGS)], description="The payment page says error 503.",
                category="payments", channel="email", requester={"email": email}), timeout=10)
            assert answer.status_code == 201, answer.text
            self.numbers.append(answer.json()["number"])

    def problems(self):
        return self.api.get(f"{self.url}/api/v1/problems", timeout=10).json()


@pytest.fixture(scope="module")
def world(platform):
    return World(platform)


def text_of(mail):
    return mail.get_body(preferencelist=("plain",)).get_content()


def test_the_surge_is_announced_and_its_tickets_grouped(world):
    """spike_detected through analytics' outbox, read back through the REST API: the category and the wording
    surges hold every ticket, and the open tickets worded alike are one group."""
    def announced():
        spikes = world.problems()["spikes"]
        kinds = {s["dimension"] for s in spikes}
        return {"category", "wording"} <= kinds and spikes
    spikes = wait_for(announced, timeout=60, message="the surge announced")
    category = next(s for s in spikes if s["dimension"] == "category")
    assert category["value"] == "payments" and sorted(category["tickets"]) == sorted(world.numbers)
    wording = next(s for s in spikes if s["dimension"] == "wording")
    assert {"checkout", "503"} <= set(wording["value"].split())
    groups = world.problems()["groups"]
    assert [sorted(t["number"] for t in g["tickets"]) for g in groups] == [sorted(world.numbers)]


def test_the_dashboard_shows_the_figures_and_the_surge_and_makes_a_problem(browser, world, smtp_sink):
    wait_for(lambda: world.problems()["groups"], timeout=60, message="the similar tickets grouped")
    page = browser.page("sue")
    sign_in(page, world, "sue@example.org")
    page.goto(url=f"{world.url}/workspace/dashboard?period=last_7_days")
    assert page.text(selector="main h1") == "Dashboard"
    assert page.text(selector="#figures .tile:first-child .tile-value") == str(SURGE)  # tickets created
    assert page.count(selector="#daily-chart rect") == 14  # 7 days, created and solved
    assert page.text(selector="#figures .tile:nth-child(4) .tile-value") == str(SURGE)  # open at the end
    live = page.evaluate(expression="fetch('/workspace/dashboard/figures?period=last_7_days')"
                                    ".then(r => r.text())")  # what the tiles refresh from every minute
    assert 'id="dash-figures"' in live and "Tickets created" in live
    page.wait_for_text(selector="#surges", text="payments")
    assert page.count(selector="#similar-groups form") == 1
    no_serious_violations(page)
    shot(page, "dashboard-en")

    page.fill(selector="#problem-subject-1", value="Checkout down: payment provider error 503")
    page.click(selector="#similar-groups form button[type=submit]")
    page.wait_for_text(selector=".flash-success", text=f"{SURGE} tickets")
    problem = page.url().rstrip("/").rsplit("/", 1)[-1]
    page.wait_for_text(selector="#links", text="incident")  # the problem's ticket page lists its incidents
    assert page.count(selector="#links .badge") == SURGE
    view = world.api.get(f"{world.url}/api/v1/problems/{problem}", timeout=10).json()
    assert view["problem"]["subject"] == "Checkout down: payment provider error 503"
    assert sorted(i["number"] for i in view["incidents"]) == sorted(world.numbers)

    # one update, to every customer on their own channel (email here: a real SMTP sink)
    sent = world.api.post(f"{world.url}/api/v1/problems/{problem}/updates",
                          json={"body": "Payments work again since 10:40. Sorry for the trouble."}, timeout=10)
    assert sent.status_code == 201, sent.text
    assert sorted(sent.json()["sent_to"]) == sorted(world.numbers)
    def updates(customer):
        return [m for m in smtp_sink.messages(customer) if "Payments work again" in text_of(m)]
    for customer in world.customers:
        wait_for(lambda customer=customer: updates(customer), timeout=30, message=f"the update to {customer}")
    assert [len(updates(customer)) for customer in world.customers] == [1] * SURGE

    # solving the problem solves its incidents
    solved = world.api.patch(f"{world.url}/api/v1/tickets/{problem}", json={"status": "resolved"}, timeout=10)
    assert solved.status_code == 200, solved.text
    statuses = {n: world.api.get(f"{world.url}/api/v1/tickets/{n}", timeout=10).json()["status"]
                for n in world.numbers}
    assert set(statuses.values()) == {"resolved"}, statuses


@pytest.mark.parametrize("who, locale, title", [("nora@example.org", "nl-NL", "Dashboard"),
                                                ("sven@example.org", "sv-SE", "Översikt")])
def test_the_dashboard_in_dutch_and_swedish(browser, world, who, locale, title):
    page = browser.page(who.split("@")[0], locale=locale)
    sign_in(page, world, who)
    page.goto(url=f"{world.url}/workspace/dashboard?period=last_30_days")
    assert page.text(selector="main h1") == title
    page.wait_for(selector="#daily-chart")
    no_serious_violations(page)
    shot(page, f"dashboard-{locale[:2]}")


def test_a_report_saved_from_the_dashboard_is_listed_opened_and_deleted(browser, world):
    """The dashboard's current report (measure, grouping, period, team) saved under a name: listed as the
    person's own, opened (run now), deleted; a form without its CSRF token changes nothing."""
    page = browser.page("sue")
    sign_in(page, world, "sue@example.org")
    page.goto(url=f"{world.url}/workspace/dashboard?period=last_7_days&measure=volume&group_by=channel")
    assert page.text(selector="#report-title") == "Tickets created and solved · Channel"
    assert "email" in page.text(selector="#report-table tbody")  # the surge's tickets came by mail
    assert page.text(selector="#saved-reports .empty").startswith("No saved reports yet")
    forged = page.evaluate(expression="fetch('/workspace/dashboard/reports', {method: 'POST', body: new "
                                      "URLSearchParams({name: 'forged', measure: 'volume'})}).then(r => r.status)")
    assert forged == 403

    page.fill(selector="#report-name", value="Mail volume")
    page.click(selector="#save-report button[type=submit]")
    page.wait_for_text(selector=".flash-success", text="Mail volume")
    assert page.text(selector="#saved-table tbody tr td:first-child") == "Mail volume"
    page.fill(selector="#report-name", value="Mail volume")  # the same name again: refused, said why
    page.click(selector="#save-report button[type=submit]")
    page.wait_for_text(selector=".flash-error", text="already have a report called")
    mine = world.api.get(f"{world.url}/api/v1/saved-reports", timeout=10).json()
    assert mine == []  # the admin token's own list: the report is Sue's, not everyone's

    page.click(selector="#saved-table a")
    page.wait_for(selector="#report-table")
    assert page.text(selector="main h1") == "Mail volume"
    assert "Channel" in page.text(selector="#saved-what") and "Last 7 days" in page.text(selector="#saved-what")
    assert "email" in page.text(selector="#report-table tbody")
    no_serious_violations(page)
    shot(page, "saved-report-en")

    page.goto(url=f"{world.url}/workspace/dashboard?period=last_7_days&measure=volume&group_by=channel")
    no_serious_violations(page)
    shot(page, "dashboard-saved-reports-en")
    page.click(selector="#saved-table button[type=submit]")
    page.wait_for_text(selector=".flash-success", text="deleted")
    assert page.count(selector="#saved-table") == 0


def test_the_weekly_summary_reaches_each_supervisor_once(world, smtp_sink):
    """Last here: by now the summary's timer (1 s) has fired many times since the platform started."""
    def summaries(to):
        return [m for m in smtp_sink.messages(to) if m["Subject"].startswith("Helpdesk weekly summary")]
    for to in SUMMARY_TO:
        wait_for(lambda to=to: summaries(to), timeout=30, message=f"the weekly summary to {to}")
    assert [len(summaries(to)) for to in SUMMARY_TO] == [1, 1]
    body = text_of(summaries("sue@example.org")[0])
    assert "Tickets created:" in body and "SLA compliance:" in body
