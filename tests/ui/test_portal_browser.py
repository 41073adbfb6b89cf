"""The customer portal in a real browser (Debian's Chromium through Playwright) against the whole platform,
with intake sending mail to a real SMTP server (aiosmtpd, the intake tests' own sink).

A Swedish visitor finds an article while typing, opens it and says it answered the question (the
deflection the knowledge base counts); an English visitor types a request, sees suggestions, attaches a
file and gets the confirmation page and mail; a refused file sends nothing; a phone-sized screen works.
axe-core on every page; screenshots in en, nl and sv go to docs/screenshots/ (the README shows them).
"""
import http.server
import os
import re
import subprocess
import threading
import uuid

import pytest

from stack import BIN, ROOT, free_port, wait_for
from ui_kit import PASSWORD, no_serious_violations, shot, sign_in as workspace_sign_in

pytestmark = pytest.mark.e2e

SENT = {}  # the request the requester test made, followed by the customer tests after it
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")


class HostSite:
    """Another site (``localhost``, so another origin and another site than the platform's 127.0.0.1) whose
    pages embed the platform's request form or chat widget with the loader script."""

    def __init__(self):
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"
        self.pages = {}
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = site.pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def host_site():
    site = HostSite()
    yield site
    site.stop()


@pytest.fixture(scope="module")
def platform(ui_platform, smtp_sink, host_site):
    return ui_platform("stack-portal", {
        "HELPDESK_SMTP_URL": smtp_sink.url, "HELPDESK_SUPPORT_ADDRESS": "support@helpdesk.test",
        "HELPDESK_MAIL_POLL_INTERVAL": "0.2", "HELPDESK_MAIL_BACKOFF": "0.2,0.5,1",
        "HELPDESK_EMBED_ORIGINS": host_site.origin, "HELPDESK_CHAT_ANSWER_TIMEOUT": "3600"})


@pytest.fixture(scope="module")
def articles(platform):
    """A password article in English with its Swedish and Dutch translations, and a billing article."""
    api, url = platform.session(), platform.url
    first = api.post(f"{url}/api/v1/kb/articles", json={
        "title": "Reset your password", "language": "en", "category": "account/login", "status": "published",
        "body": "# Forgotten password\n\n1. Open **Sign in**.\n2. Choose *Forgot password*.\n\n<script>alert(1)</script>"},
        timeout=10)
    first.raise_for_status()
    ids = {"en": first.json()["id"]}
    for language, title, body in (
            ("sv", "Återställ ditt lösenord", "# Glömt lösenord\n\n1. Öppna **Logga in**.\n2. Välj *Glömt lösenord*."),
            ("nl", "Je wachtwoord opnieuw instellen", "# Wachtwoord vergeten\n\n1. Open **Aanmelden**.")):
        answer = api.post(f"{url}/api/v1/kb/articles", json={
            "title": title, "language": language, "category": "account/login", "status": "published", "body": body,
            "translation_of": ids["en"]}, timeout=10)
        answer.raise_for_status()
        ids[language] = answer.json()["id"]
    api.post(f"{url}/api/v1/kb/articles", json={
        "title": "Pay an invoice by bank transfer", "language": "en", "category": "billing", "status": "published",
        "body": "Use the reference on the invoice."}, timeout=10).raise_for_status()

    def indexed():
        found = api.get(f"{url}/api/v1/kb/suggest", params={"text": "lösenord", "lang": "sv"}, timeout=10).json()
        return any(item["id"] == ids["sv"] for item in found["items"])

    wait_for(indexed, timeout=30, what="the Swedish article in the index")
    return ids


def test_a_swedish_visitor_finds_an_article_and_marks_it_helpful(browser, platform, articles):
    page = browser.page("sv-visitor", locale="sv-SE")
    page.goto(url=f"{platform.url}/help/")
    page.wait_for_text(selector="#popular a", text="Återställ ditt lösenord")
    assert "Account / Login" in page.text(selector="#categories")
    no_serious_violations(page)
    shot(page, "portal-home-sv")
    page.fill(selector="#q", value="lösen")
    page.wait_for_text(selector="#suggestions a", text="Återställ ditt lösenord")
    page.click(selector="#suggestions a")
    page.wait_for(selector="#article-title")
    assert page.text(selector="#article-title") == "Återställ ditt lösenord"
    assert "Glömt lösenord" in page.text(selector=".article-body")
    assert "Reset your password" in page.text(selector=".translations")  # its translation, linked
    suggestion = page.url().split("s=")[1].split("&")[0]
    no_serious_violations(page)
    shot(page, "portal-article-sv")
    page.click(selector="#answer-yes")
    page.wait_for(selector=".flash-success")
    # The knowledge base counted the deflection: the same suggestion cannot be resolved a second time.
    again = platform.session().post(f"{platform.url}/api/v1/kb/suggestions/{suggestion}/resolved", json={}, timeout=10)
    assert again.status_code == 200 and again.json()["recorded"] is False, again.text
    assert again.json()["article_id"] == articles["sv"]


def test_the_english_article_is_rendered_and_sanitised_and_switches_language(browser, platform, articles):
    page = browser.page("en-visitor", locale="en-GB")
    page.goto(url=f"{platform.url}/help/articles/{articles['en']}")
    assert page.count(selector=".article-body script") == 0
    assert page.text(selector=".article-body strong") == "Sign in"
    shot(page, "portal-article-en")
    page.click(selector="nav.languages a[lang=nl]")
    page.wait_for(selector="html[lang=nl]", state="attached")
    page.goto(url=f"{platform.url}/help/")
    assert "Je wachtwoord opnieuw instellen" in page.text(selector="#popular")
    shot(page, "portal-home-nl")


def test_a_request_with_suggestions_and_an_attachment_is_confirmed_by_page_and_mail(
        browser, platform, articles, smtp_sink, tmp_path):
    customer = f"eva-{uuid.uuid4().hex[:8]}@example.se"
    screen = tmp_path / "screen.png"
    screen.write_bytes(PNG)
    page = browser.page("requester", locale="en-GB")
    page.goto(url=f"{platform.url}/help/request")
    page.fill(selector="#name", value="Eva <b>Ångström</b>")
    page.fill(selector="#email", value=customer)
    page.fill(selector="#subject", value="password reset")
    page.wait_for_text(selector="#suggestions a", text="Reset your password")
    no_serious_violations(page)
    shot(page, "portal-request-en")
    page.fill(selector="#description", value="The reset mail never arrives.")
    page.set_files(selector="#attachments", paths=[str(screen)])
    page.click(selector="#request-form button[type=submit]")
    page.wait_for(selector="#ticket-number")
    number = page.text(selector="#ticket-number")
    assert number.startswith("HD-")
    no_serious_violations(page)
    shot(page, "portal-request-sent-en")
    api = platform.session()
    ticket = api.get(f"{platform.url}/api/v1/tickets/{number}", timeout=10).json()
    assert ticket["channel"] == "web" and ticket["requester"]["email"] == customer
    assert ticket["requester"]["name"] == "Eva <b>Ångström</b>"  # kept as typed; shown as text
    files = wait_for(lambda: api.get(f"{platform.url}/api/v1/tickets/{number}/attachments", timeout=10).json(),
                     timeout=20, what="the attachment")
    assert [(f["filename"], f["size"]) for f in files] == [("screen.png", len(PNG))]
    (mail,) = smtp_sink.wait_for(customer, timeout=30)
    assert number in mail["Subject"]
    SENT.update(number=number, customer=customer)


def sign_in_links(smtp_sink, customer):
    links = [re.search(r"(http://\S+/help/sign-in/\S+)", m.get_content()) for m in smtp_sink.messages(customer)]
    return [link.group(1) for link in links if link]


def mailed_link(smtp_sink, customer, after=0):
    """The newest sign-in link mailed to ``customer`` once there are more than ``after``."""
    return wait_for(lambda: len(sign_in_links(smtp_sink, customer)) > after and sign_in_links(smtp_sink, customer),
                    timeout=30, what="the sign-in mail")[-1]


def test_the_customer_signs_in_by_mailed_link_sees_the_public_reply_only_and_replies(
        browser, platform, smtp_sink):
    number, customer = SENT["number"], SENT["customer"]
    api, url = platform.session(), platform.url
    api.post(f"{url}/api/v1/tickets/{number}/messages", json={"body": "Try the link in the newest mail.",
                                                               "visibility": "public"}, timeout=10).raise_for_status()
    api.post(f"{url}/api/v1/tickets/{number}/messages", json={"body": "INTERNAL: mail server queue stuck",
                                                               "visibility": "internal"}, timeout=10).raise_for_status()
    page = browser.page("customer", locale="sv-SE")
    page.goto(url=f"{url}/help/requests")
    page.wait_for(selector="#email")
    no_serious_violations(page)
    shot(page, "portal-sign-in-sv")
    page.fill(selector="#email", value=customer)
    page.click(selector="form.stack button[type=submit]")
    page.wait_for(selector="#link-sent")
    link = mailed_link(smtp_sink, customer)
    page.goto(url=link)
    page.click(selector="#use-link")
    page.wait_for(selector="#my-requests")
    assert number in page.text(selector="#my-requests")
    no_serious_violations(page)
    shot(page, "portal-my-requests-sv")
    page.click(selector=f"#my-requests a[href$='{number}']")
    page.wait_for(selector="#conversation")
    conversation = page.text(selector="#conversation")
    assert "Try the link in the newest mail." in conversation
    assert "INTERNAL" not in page.content()
    page.fill(selector="#reply-body", value="Now it <b>works</b>, thanks!")
    page.click(selector="#reply-form button[type=submit]")
    page.wait_for_text(selector="#conversation .message", text="Now it <b>works</b>, thanks!")
    no_serious_violations(page)
    shot(page, "portal-request-follow-sv")
    mine = [m for m in api.get(f"{url}/api/v1/tickets/{number}/messages", timeout=10).json()
            if m["author_role"] == "customer"]
    assert [m["body"] for m in mine] == ["Now it <b>works</b>, thanks!"]  # the agent side has it
    # Solved, then reopened, as the workflow allows (the agents see the status change).
    page.click(selector="#solved")
    page.wait_for(selector="#reopen")
    assert api.get(f"{url}/api/v1/tickets/{number}", timeout=10).json()["status"] == "resolved"
    page.click(selector="#reopen")
    page.wait_for(selector="#solved")
    assert api.get(f"{url}/api/v1/tickets/{number}", timeout=10).json()["status"] == "open"
    # A guessed number of someone else's ticket is refused, like a missing one.
    other = api.post(f"{url}/api/v1/tickets", json={"subject": "Someone else's", "description": "x",
                                                    "requester": {"email": "someone@example.org"}}, timeout=10).json()
    assert page.goto(url=f"{url}/help/requests/{other['number']}") == 404
    # The link, used once, is refused when used again (in another browser too).
    again = browser.page("replay", locale="en-GB")
    assert again.goto(url=link) == 410
    assert "used already" in again.text(selector="#sign-in-problem")


def agent_page(browser, platform, name="agent", locale="en-GB"):
    """An agent (admin) signed in to the workspace: what the support side sees of the customer's doings."""
    subprocess.run([os.path.join(BIN, "helpdesk"), "account", "create", "--email", "agent@example.org", "--role",
                    "admin", "--password", PASSWORD, "--name", "Alex Agent"], cwd=ROOT, env=platform.env(),
                   capture_output=True)  # made by the first caller; later ones find it there
    page = browser.page(name, locale=locale)
    workspace_sign_in(page, platform, "agent@example.org")
    return page


def test_the_customer_replies_with_a_file_a_refused_one_sends_nothing_and_the_agent_sees_it(
        browser, platform, smtp_sink, tmp_path):
    number, customer = SENT["number"], SENT["customer"]
    api, url = platform.session(), platform.url
    log, program = tmp_path / "router.log", tmp_path / "router.pdf"
    log.write_text("12:01 link down\n12:02 link up\n")
    program.write_bytes(b"MZ\x90\x00 not a pdf")
    page = browser.page("replier", locale="nl-NL")
    sign_in(page, url, smtp_sink, customer)
    page.goto(url=f"{url}/help/requests/{number}")
    before = len(api.get(f"{url}/api/v1/tickets/{number}/messages", timeout=10).json())
    page.fill(selector="#reply-body", value="Het logboek <i>zit erbij</i>.")
    page.set_files(selector="#reply-files", paths=[str(log), str(program)])
    page.click(selector="#reply-form button[type=submit]")
    page.wait_for(selector="#reply-problem")
    assert "router.pdf" in page.text(selector="#reply-problem")  # named, in Dutch, with the text kept
    assert page.evaluate(expression="document.querySelector('#reply-body').value") == "Het logboek <i>zit erbij</i>."
    no_serious_violations(page)
    shot(page, "portal-reply-refused-nl")
    assert len(api.get(f"{url}/api/v1/tickets/{number}/messages", timeout=10).json()) == before  # nothing sent
    page.set_files(selector="#reply-files", paths=[str(log)])
    page.click(selector="#reply-form button[type=submit]")
    page.wait_for_text(selector="#attachments", text="router.log")
    page.wait_for_text(selector="#conversation .message", text="Het logboek <i>zit erbij</i>.")
    no_serious_violations(page)
    shot(page, "portal-reply-with-file-nl")
    mine = [m for m in api.get(f"{url}/api/v1/tickets/{number}/messages", timeout=10).json()
            if m["author_role"] == "customer"]
    assert mine[-1]["body"].startswith("Het logboek <i>zit erbij</i>.") and "router.log" in mine[-1]["body"]
    files = api.get(f"{url}/api/v1/tickets/{number}/attachments", timeout=10).json()
    assert [f["filename"] for f in files] == ["screen.png", "router.log"]
    # The agent sees the file on the ticket and downloads what the customer sent.
    agent = agent_page(browser, platform)

    def listed():  # the page leaves out a part whose service did not answer in time (a loaded machine): again
        return (agent.goto(url=f"{url}/workspace/tickets/{number}") == 200 and agent.count(selector="#attachments") == 1
                and "router.log" in agent.text(selector="#attachments"))

    wait_for(listed, timeout=60, interval=1, what="the customer's file on the agent's ticket page")
    fetched = agent.evaluate(expression="fetch([...document.querySelectorAll('#attachments a')].find(a => "
                                        "a.textContent === 'router.log').href).then(r => r.text())")
    assert fetched == "12:01 link down\n12:02 link up\n"
    no_serious_violations(agent)
    shot(agent, "workspace-customer-file-en")


def sign_in(page, url, smtp_sink, customer):
    """Ask for a link on the page, open the newly mailed one, use it: the page ends on "my requests"."""
    before = len(sign_in_links(smtp_sink, customer))
    page.goto(url=f"{url}/help/sign-in")
    page.fill(selector="#email", value=customer)
    page.click(selector="form.stack button[type=submit]")
    page.wait_for(selector="#link-sent")
    page.goto(url=mailed_link(smtp_sink, customer, after=before))
    page.click(selector="#use-link")
    page.wait_for(selector="#my-requests, main p.muted")


FETCH = ("fetch(document.querySelector('#attachments a').href).then(r => [r.status, "
         "r.headers.get('content-type'), r.headers.get('content-disposition')])")


def test_the_open_request_shows_status_changes_and_answers_live_and_downloads_its_file(browser, platform, smtp_sink):
    number, customer = SENT["number"], SENT["customer"]
    api, url = platform.session(), platform.url
    page = browser.page("live", locale="en-GB")
    sign_in(page, url, smtp_sink, customer)
    page.goto(url=f"{url}/help/requests/{number}")
    page.wait_for(selector="[data-live=open]", state="attached")  # the stream is up: what changes now shows
    page.evaluate(expression="window.__notReloaded = true")
    assert "screen.png" in page.text(selector="#attachments")
    status, content_type, disposition = page.evaluate(expression=FETCH)
    assert (status, content_type) == (200, "image/png")
    assert disposition.startswith('attachment; filename="screen.png"')
    page.fill(selector="#reply-body", value="a draft in progress")
    api.patch(f"{url}/api/v1/tickets/{number}", json={"status": "pending"}, timeout=10).raise_for_status()
    page.wait_for_text(selector="#request-status", text="Pending")
    api.post(f"{url}/api/v1/tickets/{number}/messages", json={"body": "Could you send the log too?",
                                                               "visibility": "public"}, timeout=10).raise_for_status()
    page.wait_for_text(selector="#conversation .message", text="Could you send the log too?")
    assert page.evaluate(expression="window.__notReloaded") is True  # the same page, updated in place
    assert page.evaluate(expression="document.querySelector('#reply-body').value") == "a draft in progress"
    no_serious_violations(page)
    shot(page, "portal-request-live-en")
    # someone else's file: the ticket's 404, as for a guessed number
    other = api.post(f"{url}/api/v1/tickets", json={"subject": "Not yours", "description": "x",
                                                    "requester": {"email": "stranger@example.org"}}, timeout=10).json()
    assert page.goto(url=f"{url}/help/requests/{other['number']}/attachments/1") == 404
    assert page.goto(url=f"{url}/help/requests/{other['number']}/live") == 404


def test_members_of_a_sharing_organisation_see_each_others_requests_and_others_see_none(
        browser, platform, smtp_sink):
    api, url, tag = platform.session(), platform.url, uuid.uuid4().hex[:6]
    acme, globex = f"acme-{tag}.example", f"globex-{tag}.example"
    for name, domain, shared in (("Acme", acme, True), ("Globex", globex, True)):
        api.post(f"{url}/api/v1/organisations", json={"name": name, "domains": [domain], "shared": shared},
                 timeout=10).raise_for_status()
    made = {}
    for who, name, subject in ((f"ann@{acme}", "Ann Berg", "The printer jams"),
                               (f"bob@{acme}", "Bob <i>Dahl</i>", "VPN keeps dropping"),
                               (f"eve@{globex}", "Eve", "Invoice is wrong")):
        made[who] = api.post(f"{url}/api/v1/tickets", json={"subject": subject, "description": "Please help.",
                                                            "requester": {"email": who, "name": name}},
                             timeout=10).json()["number"]
    for locale, shots_as in (("nl-NL", "nl"), ("sv-SE", "sv"), ("en-GB", "en")):
        page = browser.page("ann", locale=locale)
        sign_in(page, url, smtp_sink, f"ann@{acme}")
        listed = page.text(selector="#my-requests")
        assert made[f"ann@{acme}"] in listed and made[f"bob@{acme}"] in listed
        assert made[f"eve@{globex}"] not in listed and "Bob <i>Dahl</i>" in listed  # shown as typed, as text
        no_serious_violations(page)
        shot(page, f"portal-organisation-{shots_as}")
    page.click(selector=f"#my-requests a[href$='{made[f'bob@{acme}']}']")
    page.wait_for(selector="#colleagues-request")
    assert page.count(selector="#reply-form") == 0 and page.count(selector="#solved") == 0  # read only
    no_serious_violations(page)
    eve = browser.page("eve", locale="en-GB")
    sign_in(eve, url, smtp_sink, f"eve@{globex}")
    assert made[f"ann@{acme}"] not in eve.text(selector="#my-requests")
    assert eve.goto(url=f"{url}/help/requests/{made[f'ann@{acme}']}") == 404
    # the agents see the organisation on the ticket (REST parity: the workspace shows the same view)
    ticket = api.get(f"{url}/api/v1/tickets/{made[f'bob@{acme}']}", timeout=10).json()
    assert ticket["requester"]["organisation"]["name"] == "Acme"


def test_another_site_embeds_the_request_form_and_the_chat_widget(browser, platform, host_site):
    for kind in ("request", "chat"):
        host_site.pages[f"/{kind}"] = (
            f'<!doctype html><html lang="en"><head><title>Shop</title></head><body><main><h1>Our shop</h1>'
            f'<script src="{platform.url}/static/js/embed.js" data-helpdesk="{kind}" async></script></main></body></html>')
    page = browser.page("host", locale="nl-NL")
    for kind in ("request", "chat"):
        page.goto(url=f"{host_site.origin}/{kind}")
        page.wait_for(selector="iframe", state="attached")
        # the frame's page posts its height once it loaded: a frame the policy refused would never do so
        wait_for(lambda: page.evaluate(expression="document.querySelector('iframe').style.height") not in ("", None),
                 timeout=20, what=f"the embedded {kind} page to load and size its frame")
        assert page.evaluate(expression="document.querySelector('iframe').src") == f"{platform.url}/help/embed/{kind}"
        no_serious_violations(page)
        shot(page, f"portal-embedded-{kind}-nl")


def test_the_chat_widget_starts_a_chat_and_shows_the_agents_answers_live(browser, platform):
    api, url, tag = platform.session(), platform.url, uuid.uuid4().hex[:6]
    for locale, language in (("sv-SE", "sv"), ("en-GB", "en")):
        page = browser.page("chatter", locale=locale)
        page.goto(url=f"{url}/help/embed/chat")
        page.wait_for(selector="#chat-start")
        no_serious_violations(page)
        email = f"chatter-{language}-{tag}@example.se"
        page.fill(selector="#chat-name", value="Stina <b>S</b>")
        page.fill(selector="#chat-email", value=email)
        page.fill(selector="#chat-first", value="Min skrivare är tyst")
        page.click(selector="#chat-start button[type=submit]")
        page.wait_for(selector="#chat-widget[data-live=open]", state="attached")
        page.wait_for(selector="#chat-start", state="hidden")  # the start form gives way to the conversation
        page.wait_for_text(selector="#chat-log .chat-message", text="Min skrivare är tyst")
        waiting = wait_for(lambda: [c for c in api.get(f"{url}/api/v1/chats", timeout=10).json()
                                    if c["customer"].get("email") == email], timeout=20, what="the waiting chat")
        chat_id = waiting[0]["id"]
        api.post(f"{url}/api/v1/chats/{chat_id}/join", timeout=10).raise_for_status()
        api.post(f"{url}/api/v1/chats/{chat_id}/messages", json={"body": "Har du <i>provat</i> att starta om den?"},
                 timeout=10).raise_for_status()
        page.wait_for_text(selector="#chat-log .chat-message", text="Har du <i>provat</i> att starta om den?")
        assert page.count(selector="#chat-log i") == 0  # the agent's text is shown as text
        page.fill(selector="#chat-message", value="Ja, två gånger")
        page.click(selector="#chat-send button[type=submit]")
        page.wait_for_text(selector="#chat-log .chat-message", text="Ja, två gånger")
        entries = api.get(f"{url}/api/v1/chats/{chat_id}/entries", timeout=10).json()["entries"]
        assert [e["body"] for e in entries if e["kind"] == "message"][-1] == "Ja, två gånger"  # the agent has it
        no_serious_violations(page)
        shot(page, f"portal-chat-widget-{language}")
        if language == "sv":  # CSAT on a chat ticket resolved while the chat is open: the survey comes in the chat
            number = api.get(f"{url}/api/v1/chats/{chat_id}/entries", timeout=10).json()["chat"]["ticket_number"]
            api.patch(f"{url}/api/v1/tickets/{number}", json={"status": "resolved"}, timeout=10).raise_for_status()
            survey_link = "#chat-log .chat-by-system a[href*='/help/satisfaction/']"
            page.wait_for(selector=survey_link, state="attached")
            link = page.evaluate(expression=f"document.querySelector(\"{survey_link}\").href")
            assert "Betygsätt den här" in page.text(selector="#chat-log .chat-by-system")  # in the chat's language
            no_serious_violations(page)
            shot(page, "portal-chat-survey-sv")
            survey = [m for m in api.get(f"{url}/api/v1/tickets/{number}/messages", timeout=10).json()
                      if "/help/satisfaction/" in m["body"]]  # on the ticket too, once
            assert len(survey) == 1 and survey[0]["visibility"] == "public" and survey[0]["author"] == "surveys"
            assert link in survey[0]["body"]
        page.click(selector="#chat-leave")
        page.wait_for(selector="#chat-log .chat-ended", state="attached")
        if language == "sv":  # the link needs no sign-in: one click rates
            page.goto(url=f"{link}?rating=4")
            page.wait_for(selector="#csat-recorded")
            rated = api.get(f"{url}/api/v1/tickets/{number}/satisfaction", timeout=10).json()
            assert rated["rating"] == 4
        else:  # resolved after the chat ended: the survey is on the ticket (the portal's conversation) only
            number = wait_for(lambda: api.get(f"{url}/api/v1/chats/{chat_id}/entries", timeout=10).json()["chat"]
                              ["ticket_number"], timeout=20, what="the chat's ticket")
            api.patch(f"{url}/api/v1/tickets/{number}", json={"status": "resolved"}, timeout=10).raise_for_status()
            wait_for(lambda: [m for m in api.get(f"{url}/api/v1/tickets/{number}/messages", timeout=10).json()
                              if "/help/satisfaction/" in m["body"]], timeout=30, what="the survey message")
            entries = api.get(f"{url}/api/v1/chats/{chat_id}/entries", timeout=10).json()["entries"]
            assert not [e for e in entries if e["author_role"] == "system"]  # not into the ended chat


def test_on_resolution_the_csat_mail_arrives_and_one_click_and_a_comment_are_recorded_for_the_agent(
        browser, platform, smtp_sink):
    number, customer = SENT["number"], SENT["customer"]
    api, url = platform.session(), platform.url
    api.patch(f"{url}/api/v1/tickets/{number}", json={"status": "resolved"}, timeout=10).raise_for_status()

    def rating_links():
        found = [re.findall(r"(http://\S+/help/satisfaction/\S+\?rating=\d)", m.get_content())
                 for m in smtp_sink.messages(customer)]
        return [links for links in found if links]

    (links,) = wait_for(rating_links, timeout=30, what="the satisfaction mail")
    assert [link[-1] for link in links] == ["5", "4", "3", "2", "1"]
    page = browser.page("rater", locale="en-GB")  # no sign-in: the signed link is enough
    page.goto(url=links[1])  # one click: 4
    page.wait_for(selector="#csat-recorded")
    assert api.get(f"{url}/api/v1/tickets/{number}/satisfaction", timeout=10).json()["rating"] == 4
    no_serious_violations(page)
    shot(page, "portal-csat-en")
    page.fill(selector="#comment", value="Quick, but the <i>first</i> mail was lost.")
    page.click(selector="#csat-form button[type=submit]")
    page.wait_for(selector=".flash-success")
    seen = api.get(f"{url}/api/v1/tickets/{number}/satisfaction", timeout=10).json()
    assert (seen["rating"], seen["comment"]) == (4, "Quick, but the <i>first</i> mail was lost.")
    agent = agent_page(browser, platform, "agent-csat")  # the agent sees it on the ticket page

    def rated():
        return (agent.goto(url=f"{url}/workspace/tickets/{number}") == 200 and agent.count(selector="#satisfaction") == 1
                and "4/5" in agent.text(selector="#satisfaction"))

    wait_for(rated, timeout=60, interval=1, what="the rating on the agent's ticket page")
    assert "Quick, but the <i>first</i> mail was lost." in agent.text(selector="#satisfaction")
    sv = browser.page("rater-sv", locale="sv-SE")
    sv.goto(url=links[0])  # a later click changes the answer
    sv.wait_for(selector="#csat-recorded")
    shot(sv, "portal-csat-sv")
    seen = api.get(f"{url}/api/v1/tickets/{number}/satisfaction", timeout=10).json()
    assert (seen["rating"], seen["comment"]) == (5, "Quick, but the <i>first</i> mail was lost.")
    forged = links[0].replace("/satisfaction/", "/satisfaction/x")
    assert sv.goto(url=forged) == 404
    # Asked once per ticket: reopened and resolved again, no second survey mail.
    api.patch(f"{url}/api/v1/tickets/{number}", json={"status": "open"}, timeout=10).raise_for_status()
    api.patch(f"{url}/api/v1/tickets/{number}", json={"status": "resolved"}, timeout=10).raise_for_status()
    resolved_mails = wait_for(lambda: [m for m in smtp_sink.messages(customer) if "Resolved" in m["Subject"]][1:],
                              timeout=30, what="the second resolution mail")
    assert resolved_mails and len(rating_links()) == 1


def test_the_nps_survey_goes_out_to_a_customer_with_a_resolution_and_records_score_and_why(
        browser, platform, smtp_sink):
    customer = SENT["customer"]

    def nps_links():
        found = [re.findall(r"(http://\S+/help/recommend/\S+\?score=\d+)", m.get_content())
                 for m in smtp_sink.messages(customer)]
        return [links for links in found if links]

    (links,) = wait_for(nps_links, timeout=30, what="the NPS mail")
    assert len(links) == 11
    page = browser.page("recommender", locale="nl-NL")
    nine = next(link for link in links if link.endswith("score=9"))
    page.goto(url=nine)
    page.wait_for(selector="#nps-recorded")
    assert page.evaluate(expression="document.querySelector('input[name=score]:checked').value") == "9"
    page.fill(selector="#comment", value="Snel en vriendelijk")
    page.click(selector="#nps-form button[type=submit]")
    page.wait_for(selector=".flash-success")
    assert page.evaluate(expression="document.querySelector('#comment').value") == "Snel en vriendelijk"
    no_serious_violations(page)
    shot(page, "portal-nps-nl")
    assert len(nps_links()) == 1  # one NPS mail for this customer, for all their resolutions


def test_a_refused_attachment_is_named_and_nothing_is_sent(browser, platform, tmp_path):
    customer = f"bo-{uuid.uuid4().hex[:8]}@example.se"
    program = tmp_path / "invoice.pdf"
    program.write_bytes(b"MZ\x90\x00 not a pdf")
    page = browser.page("refused", locale="sv-SE")
    page.goto(url=f"{platform.url}/help/request")
    page.fill(selector="#email", value=customer)
    page.fill(selector="#subject", value="Faktura")
    page.fill(selector="#description", value="Se bilagan.")
    page.set_files(selector="#attachments", paths=[str(program)])
    page.click(selector="#request-form button[type=submit]")
    page.wait_for(selector="#attachments-error")
    assert "invoice.pdf" in page.text(selector="#attachments-error")
    assert page.evaluate(expression="document.querySelector('#subject').value") == "Faktura"
    no_serious_violations(page)
    shot(page, "portal-request-refused-sv")
    found = platform.session().get(f"{platform.url}/api/v1/tickets", params={"requester": customer}, timeout=10)
    assert found.json()["items"] == []


def test_the_help_centre_works_on_a_phone(browser, platform, articles):
    page = browser.page("phone", locale="sv-SE", width=390, height=844)
    page.goto(url=f"{platform.url}/help/")
    assert page.evaluate(expression="document.documentElement.scrollWidth <= window.innerWidth")
    page.fill(selector="#q", value="lösen")
    page.wait_for_text(selector="#suggestions a", text="Återställ ditt lösenord")
    no_serious_violations(page)
    shot(page, "portal-phone-sv")
    page.goto(url=f"{platform.url}/help/request")
    shot(page, "portal-request-phone-sv")
    assert page.evaluate(expression="document.documentElement.scrollWidth <= window.innerWidth")
