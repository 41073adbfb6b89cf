"""The ticket page's actions in a real browser (Debian's Chromium through Playwright) against the whole
platform, with intake sending mail to a real SMTP sink: link and merge tickets, canned replies, mentions and
following, the requester's contact, SLA clocks, custom fields, knowledge-base suggestions, escalation.

The set-up is the workspace tests' (``ui_kit``: the world, signing in, axe), on a stack of this module's
own that mails customers. Screenshots go to docs/screenshots/.
"""
import uuid

import pytest

from mail_servers import dovecot, mails  # noqa: F401 (dovecot: a fixture)
from stack import wait_for
from ui_kit import World, no_serious_violations, shot, sign_in

pytestmark = pytest.mark.e2e

LOCALES = (("en", "en-GB"), ("nl", "nl-NL"), ("sv", "sv-SE"))


@pytest.fixture(scope="module")
def mailbox(dovecot):
    return dovecot.mailbox()


@pytest.fixture(scope="module")
def platform(ui_platform, smtp_sink, mailbox):
    return ui_platform("stack-ticket-page", {
        "HELPDESK_IMAP_URL": mailbox.url(team="network"), "HELPDESK_IMAP_POLL_INTERVAL": "0.2",
        "HELPDESK_SMTP_URL": smtp_sink.url, "HELPDESK_SUPPORT_ADDRESS": "support@helpdesk.test",
        "HELPDESK_MAIL_POLL_INTERVAL": "0.2", "HELPDESK_MAIL_BACKOFF": "0.2,0.5,1"})


class Desk(World):
    """The workspace tests' world, with tickets from any customer on any channel."""

    def ticket(self, subject, team="network", description="Every 5 minutes since Monday", priority="high",
               email="eva@example.se", name="Eva Ångström", channel="web"):
        body = {"subject": subject, "description": description, "priority": priority, "team": team,
                "channel": channel, "requester": {"email": email, "name": name}}
        answer = self.api.post(f"{self.url}/api/v1/tickets", json=body, timeout=10)
        answer.raise_for_status()
        return answer.json()["number"]

    def read(self, number, what=""):
        answer = self.api.get(f"{self.url}/api/v1/tickets/{number}{what}", timeout=10)
        answer.raise_for_status()
        return answer.json()


@pytest.fixture(scope="module")
def world(platform):
    return Desk(platform)


@pytest.fixture(scope="module")
def pages(browser, world):
    """The admin signed in, once per language."""
    signed_in = {}
    for language, locale in LOCALES:
        page = browser.page(f"admin-{language}", locale=locale, timezone="Europe/Stockholm")
        sign_in(page, world, "admin@example.org")
        signed_in[language] = page
    return signed_in


XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def test_a_mail_over_imap_appears_in_the_open_list_without_reload_and_its_html_renders_inert(pages, world, mailbox):
    page = pages["en"]
    page.goto(url=f"{world.url}/workspace/tickets?view=all")
    page.wait_for(selector="[data-live=open]", state="attached")
    page.evaluate(expression="window.__notReloaded = true")
    subject = f"Printer jam on floor {uuid.uuid4().hex[:6]}"
    mailbox.deliver(mails.html_only("Ola Nordmann <ola@example.se>", subject,
                                    f"<p>The paper is <b>stuck</b> again.</p>{XSS}"))
    page.wait_for_text(selector="#ticket-rows tr", text=subject, timeout=30000)  # IMAP poll, intake, tickets, live
    assert page.evaluate(expression="window.__notReloaded") is True  # the same page, updated in place
    page.click(selector=f"#ticket-rows tr:has-text('{subject}') a")
    page.wait_for_text(selector="h1", text=subject)
    assert "stuck" in page.text(selector="#conversation")
    assert page.count(selector="main img") == 0 and page.count(selector="main b") == 0
    assert page.evaluate(expression="window.__xss === undefined") is True


def test_link_a_related_ticket_and_merge_a_duplicate_from_the_page(pages, world):
    page = pages["en"]
    survivor = world.ticket("VPN drops at the Malmö office")
    duplicate = world.ticket("VPN keeps dropping", description="Me too, since 9 o'clock.",
                             email="olle@example.se", name="Olle")
    related = world.ticket("Switch in Malmö replaced last week")
    world.api.post(f"{world.url}/api/v1/tickets/{duplicate}/messages",
                   json={"body": "It happens on wifi too.", "visibility": "public"}, timeout=10).raise_for_status()

    page.goto(url=f"{world.url}/workspace/tickets/{survivor}")
    page.fill(selector="#link-other", value=related)
    page.click(selector="form[action$='/links'] button[type=submit]")
    page.wait_for_text(selector=".flash-success", text=related)
    assert related in page.text(selector="#links")
    assert [link["number"] for link in world.read(related, "/links")] == [survivor]

    page.fill(selector="#link-other", value=survivor)  # itself: refused with words, nothing changes
    page.click(selector="form[action$='/links'] button[type=submit]")
    page.wait_for(selector=".flash-error")

    page.goto(url=f"{world.url}/workspace/tickets/{duplicate}")
    page.fill(selector="#merge-into", value=survivor)
    page.click(selector="form[action$='/merge'] button[type=submit]")
    page.wait_for_text(selector=".flash-success", text=duplicate)
    assert page.url().endswith(f"/workspace/tickets/{survivor}")  # on to the survivor
    notes = page.text(selector="#conversation")
    assert f"[{duplicate}] Me too, since 9 o'clock." in notes and f"[{duplicate}] It happens on wifi too." in notes
    assert page.count(selector=".message-internal") == 2
    closed = world.read(duplicate)
    assert (closed["status"], closed["merged_into"]) == ("closed", survivor)
    assert "merged_from" in [entry["field"] for entry in world.read(survivor, "/history")]
    no_serious_violations(page)
    shot(page, "ticket-merged-en")

    page.goto(url=f"{world.url}/workspace/tickets/{duplicate}")  # the closed one points to the survivor
    assert survivor in page.text(selector="#merged-into")
    assert page.count(selector="#merge-into") == 0


def test_insert_a_canned_reply_send_it_and_the_customer_gets_it_by_mail(pages, world, smtp_sink):
    customer = f"eva-{uuid.uuid4().hex[:6]}@example.se"
    number = world.ticket("Printer jams <b>daily</b>", email=customer, name="Eva <i>Å</i>")
    made = world.api.post(f"{world.url}/api/v1/canned-replies", json={
        "title": "Fixed, please confirm", "shared": True, "status": "pending",
        "body": "Hello {{customer_name}},\n{{ticket_number}} should be fixed now; please confirm.\n{{agent_name}}"},
        timeout=10)
    assert made.status_code == 201, made.text
    page = pages["en"]
    page.goto(url=f"{world.url}/workspace/tickets/{number}")
    page.select(selector="#canned", value=str(made.json()["id"]))
    page.click(selector="form.picker button[type=submit]")
    page.wait_for(selector="#canned-sets")
    text = page.evaluate(expression="document.getElementById('body').value")
    assert text == f"Hello Eva <i>Å</i>,\n{number} should be fixed now; please confirm.\nAlex Admin"
    assert page.count(selector="main i") == 0  # the customer's name stays text
    no_serious_violations(page)
    shot(page, "ticket-canned-reply-en")
    page.fill(selector="#body", value=text + "\nThanks for your patience!")
    page.click(selector="form[action$='/messages'] button[type=submit]")
    page.wait_for_text(selector=".message-public .body", text="Thanks for your patience!")
    assert world.read(number)["status"] == "pending"  # the canned reply's status, set when sent
    # Beside the acknowledgement and the status mail, the reply as sent, edits included.
    mail = wait_for(lambda: next((m for m in smtp_sink.messages(customer) if "Thanks for your patience!" in
                                  m.get_content()), None), timeout=30, what=f"the reply in {customer}'s mail")
    assert number in mail["Subject"] and f"{number} should be fixed now" in mail.get_content()


@pytest.mark.parametrize("language", ["nl", "sv"])
def test_the_ticket_page_in_dutch_and_swedish(pages, world, language):
    page = pages[language]
    number = world.ticket("Skrivaren är trasig")
    page.goto(url=f"{world.url}/workspace/tickets/{number}")
    replies = world.api.get(f"{world.url}/api/v1/canned-replies", timeout=10).json()
    page.select(selector="#canned", value=str(replies[0]["id"]))
    page.click(selector="form.picker button[type=submit]")
    page.wait_for(selector="#canned-sets")
    words = {"nl": "Verwante tickets", "sv": "Relaterade ärenden"}[language]
    assert words in page.text(selector="#links")
    no_serious_violations(page)
    shot(page, f"ticket-page-{language}")


def test_a_note_with_a_mention_notifies_the_colleague_and_never_reaches_the_customer(browser, pages, world, smtp_sink):
    customer = f"olle-{uuid.uuid4().hex[:6]}@example.se"
    number = world.ticket("Laptop will not boot", email=customer, name="Olle")
    page = pages["en"]
    page.goto(url=f"{world.url}/workspace/tickets/{number}")
    page.check(selector="input[name=visibility][value=internal]")
    page.fill(selector="#body", value="@ada could you check the BIOS settings? Secret: 4711")
    page.click(selector="form[action$='/messages'] button[type=submit]")
    page.wait_for_text(selector=".message-internal", text="BIOS settings")
    page.fill(selector="#body", value="We are looking into it.")  # a public reply after the note: a barrier
    page.click(selector="form[action$='/messages'] button[type=submit]")
    page.wait_for_text(selector=".message-public .body", text="looking into it")

    ada = browser.page("ada")
    sign_in(ada, world, "ada@example.org")
    ada.wait_for_text(selector="#unread-count", text="1")
    ada.goto(url=f"{world.url}/workspace/notifications")
    assert f"mentioned you on {number}" in ada.text(selector="#notices")
    assert "Alex Admin" in ada.text(selector="#notices") and "BIOS settings" in ada.text(selector="#notices")
    no_serious_violations(ada)
    shot(ada, "notifications-en")
    ada.click(selector="#notices form button")
    ada.wait_for(selector="#follow")
    assert ada.url().endswith(f"/workspace/tickets/{number}")

    # Following: Ada follows the ticket and hears of the admin's change (without reloading her page).
    ada.click(selector="#follow button")
    ada.wait_for_text(selector="#follow", text="Stop following")
    world.api.patch(f"{world.url}/api/v1/tickets/{number}", json={"priority": "urgent"}, timeout=10).raise_for_status()
    ada.wait_for_text(selector="#unread-count", text="1")
    notes = world.api.get(f"{world.url}/api/v1/tickets/{number}/follow", timeout=10).json()
    assert len(notes["followers"]) == 1

    mails = wait_for(lambda: [m for m in smtp_sink.messages(customer) if "looking into it" in m.get_content()]
                     and smtp_sink.messages(customer), timeout=30, what="the public reply's mail")
    assert not any("BIOS" in m.get_content() or "4711" in m.get_content() for m in mails)


def test_the_page_shows_contact_sla_fields_suggestions_and_escalates_with_a_reason(pages, world):
    api, url = world.api, world.url
    assert api.post(f"{url}/api/v1/kb/articles", json={
        "title": "Printer shows paper jam: open tray 2", "body": "Open tray 2 and remove the torn sheet.",
        "language": "en", "status": "published"}, timeout=10).status_code == 201
    assert api.post(f"{url}/api/v1/custom-fields", json={"name": "asset_tag", "label": "Asset tag",
                                                          "type": "string"}, timeout=10).status_code == 201
    customer = f"kim-{uuid.uuid4().hex[:6]}@example.se"
    earlier = world.ticket("Toner low", email=customer, name="Kim")
    body = {"subject": "Printer shows paper jam", "description": "The printer shows a paper jam all day.",
            "priority": "high", "team": "network", "channel": "web", "requester": {"email": customer, "name": "Kim"},
            "custom_fields": {"asset_tag": "<b>PR-7</b>"}}
    answer = api.post(f"{url}/api/v1/tickets", json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    number = answer.json()["number"]
    wait_for(lambda: api.get(f"{url}/api/v1/tickets/{number}/suggestions", timeout=10).json()["items"], timeout=30,
             what="the knowledge base's suggestions")

    page = pages["en"]
    page.goto(url=f"{url}/workspace/tickets/{number}")
    assert "Printer shows paper jam: open tray 2" in page.text(selector="#suggestions")
    assert earlier in page.text(selector="#other-tickets")
    assert "<b>PR-7</b>" in page.text(selector="#custom-fields") and page.count(selector="#custom-fields b") == 0
    assert "business hours left" in page.text(selector="#sla-clocks")
    page.fill(selector="#body", value="Hello Kim, see")
    page.click(selector=".insert-article")
    reply = page.evaluate(expression="document.getElementById('body').value")
    assert reply.startswith("Hello Kim, see\nPrinter shows paper jam: open tray 2: http") and "/kb/articles/" in reply
    no_serious_violations(page)
    shot(page, "ticket-page-en")

    page.fill(selector="#escalate-reason", value="Needs the hardware team")
    page.click(selector="#escalate button[type=submit]")
    page.wait_for_text(selector=".flash-success", text=number)
    wait_for(lambda: world.read(number)["tier"] == 2, timeout=20, what="the ticket on tier 2")
    routed = api.get(f"{url}/api/v1/tickets/{number}/routing", timeout=10).json()
    assert "Needs the hardware team" in str(routed)

    # Solved: its question and public answer become a draft article.
    api.post(f"{url}/api/v1/tickets/{number}/messages", json={"body": "Open tray 2 and remove the torn sheet.",
                                                              "visibility": "public"}, timeout=10).raise_for_status()
    api.patch(f"{url}/api/v1/tickets/{number}", json={"status": "resolved"}, timeout=10).raise_for_status()
    page.goto(url=f"{url}/workspace/tickets/{number}")
    page.click(selector="#article-draft button")
    page.wait_for_text(selector=".flash-success", text="Draft article")



def test_an_agent_sees_a_colleague_open_the_same_ticket_and_type_a_reply(browser, pages, world):
    number = world.ticket("Two agents, one customer")
    admin = pages["en"]
    admin.goto(url=f"{world.url}/workspace/tickets/{number}")
    ada = browser.page("ada-collision")
    sign_in(ada, world, "ada@example.org")
    ada.goto(url=f"{world.url}/workspace/tickets/{number}")
    admin.wait_for_text(selector="#presence", text="ada@example.org has this ticket open too.")
    ada.wait_for_text(selector="#presence", text="Alex Admin has this ticket open too.")
    ada.fill(selector="#body", value="Hello, I am on it")
    admin.wait_for_text(selector="#presence", text="ada@example.org is typing a reply to this ticket.")
    no_serious_violations(admin)
    shot(admin, "ticket-collision-en")
    # Pushed, not polled: five quiet seconds end her typing, and when she leaves the page its stream says
    # so and the admin's warning goes at once (not when a window of silence has passed).
    admin.wait_for_text(selector="#presence", text="ada@example.org has this ticket open too.", timeout=20000)
    # the second agent's status change reaches the first agent's open page live
    admin.evaluate(expression="window.__notReloaded = true")
    ada.select(selector="#status", value="open")
    ada.click(selector="form[action$='/changes'] button[type=submit]")
    admin.wait_for_text(selector="#ticket-status", text="Open", timeout=10000)
    assert admin.evaluate(expression="window.__notReloaded") is True
    ada.goto(url=f"{world.url}/workspace/notifications")
    admin.wait_for(selector="#presence .collision", state="detached", timeout=12000)


def test_attachments_are_listed_and_downloaded_under_safe_names_and_types(pages, world):
    import base64

    from test_workspace_browser import session_of

    payload = "<script>alert(1)</script>"
    answer = world.api.post(f"{world.url}/api/v1/intake/web-form", json={
        "subject": "Screenshot of the error", "description": "See the file.", "team": "network",
        "requester": {"email": "siv@example.se", "name": "Siv"},
        "attachments": [{"filename": 'fel"<b>.html', "content_type": "text/html",
                         "content_base64": base64.b64encode(payload.encode()).decode()}]}, timeout=10)
    assert answer.status_code in (200, 201), answer.text
    number = answer.json()["ticket_number"]
    page = pages["en"]
    page.goto(url=f"{world.url}/workspace/tickets/{number}")
    assert 'fel"<b>.html' in page.text(selector="#attachments") and page.count(selector="#attachments b") == 0
    link = page.evaluate(expression="document.querySelector('#attachments a').getAttribute('href')")
    download = session_of(world, "admin@example.org").get(world.url + link, timeout=10)
    assert download.status_code == 200 and download.content == payload.encode()
    assert download.headers["Content-Type"] == "application/octet-stream"  # HTML never runs from here
    assert download.headers["Content-Disposition"].startswith('attachment; filename="fel__b_.html"')
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    rest = world.api.get(world.url + link.replace("/workspace/", "/api/v1/"), timeout=10)
    assert (rest.status_code, rest.content) == (200, payload.encode())


def test_an_agent_makes_and_deletes_their_own_canned_reply(browser, world):
    ada = browser.page("ada-canned")
    sign_in(ada, world, "ada@example.org")
    ada.goto(url=f"{world.url}/workspace/canned-replies")
    assert ada.count(selector="input[name=shared]") == 0  # shared ones are for admins and supervisors
    ada.fill(selector="#canned-title", value="Ask for the <i>log</i>")
    ada.fill(selector="#canned-body", value="Hi {{customer_name}}, could you send the log of {{ticket_number}}?")
    ada.select(selector="#canned-priority", value="low")
    ada.click(selector="#new-canned button[type=submit]")
    ada.wait_for_text(selector=".flash-success", text="Canned reply saved")
    assert "Ask for the <i>log</i>" in ada.text(selector="#canned-list") and ada.count(selector="#canned-list i") == 0
    no_serious_violations(ada)
    shot(ada, "canned-replies-en")
    mine = [r for r in world.api.get(f"{world.url}/api/v1/canned-replies", timeout=10).json() if not r["shared"]]
    assert mine == []  # the admin's token does not see Ada's own
    ada.click(selector="#canned-list form button")
    ada.wait_for_text(selector=".flash-success", text="Canned reply deleted")
